export * from './random.js';
export * from './fixtures.js';
export * from './tokenizer.js';
export * from './torch-save.js';
export { planInputOf } from './plan-input.js';
