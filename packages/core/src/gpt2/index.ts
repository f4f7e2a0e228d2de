export * from './architecture.js';
export * from './config-shapes.js';
