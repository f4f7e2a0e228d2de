export * from './forward-config.js';
export * from './gpt2-model.js';
export * from './build-model.js';
export * from './run-forward.js';
export * from './unmerged-adapter.js';
export * from './logits-runner.js';
export * from './behaviour.js';
export * from './probes.js';
export { foldDora } from './dora.js';
