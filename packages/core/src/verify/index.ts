export * from './verify-load.js';
export * from './prove-loads.js';
export * from './written-merge.js';
export * from './ranges-equal.js';
