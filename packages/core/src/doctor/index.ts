export * from './diagnose.js';
export * from './gpt2-equivalents.js';
export * from './plan-checked.js';
