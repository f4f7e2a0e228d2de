export * from './cpu-merge.js';
export * from './token-rows.js';
