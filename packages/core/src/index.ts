export * from './errors.js';
export * from './io.js';
export * from './safetensors/index.js';
export * from './gpt2/index.js';
export * from './peft/index.js';
export * from './plan/index.js';
export * from './load/index.js';
export * from './verify/index.js';
