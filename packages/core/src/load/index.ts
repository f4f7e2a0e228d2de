export * from './emulate-load.js';
