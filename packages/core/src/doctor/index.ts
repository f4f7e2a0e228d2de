export * from './diagnose.js';
export * from './target-match.js';
