export * from './adapter-config.js';
export * from './adapter-keys.js';
export * from './lora-math.js';
export * from './target-selection.js';
export * from './token-indices.js';
