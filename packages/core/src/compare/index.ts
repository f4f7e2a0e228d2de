export * from './tensor-set.js';
export * from './diff.js';
export * from './loaded.js';
