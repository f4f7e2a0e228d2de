/**
 * `@lorafuse/cli/forward`: GPT-2's forward pass as the commands run it, for the benchmarks: loading a
 * checkpoint as transformers does, and the devices it runs on.
 */
export { OpenFiles } from '../fs/inputs.js';
export { loadCheckpointModel, loadUnmergedModel, type LoadedModel } from './load-models.js';
export { openForwardDevice, type ForwardDevice, type ForwardDeviceKind } from './forward-device.js';
