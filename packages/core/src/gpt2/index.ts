export * from './architecture.js';
export * from './config-shapes.js';
export * from './parameters.js';
export * from './base-config.js';
