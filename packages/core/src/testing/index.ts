export * from './random.js';
export * from './fixtures.js';
