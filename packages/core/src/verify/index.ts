export * from './verify-load.js';
