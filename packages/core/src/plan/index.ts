export * from './merge-plan.js';
