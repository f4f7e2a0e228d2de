export * from './cpu-merge.js';
export * from './token-rows.js';
export * from './non-finite.js';
export * from './lora-bias.js';
export * from './add-delta.js';
