/**
 * The devices of lorafuse, the one module callers import: the CPU in Node, Dawn in Node, and WebGPU
 * in headless Chromium, each in its own folder (`cpu/`, `dawn/`, `chromium/`) behind the merge and
 * compare roles of device.ts. Commands open devices here and never reach into a device's folder.
 */
export type { CompareExecutor, DeviceChoice, DeviceKind, MergedBytes, MergeExecutor, MergeTensor } from './device.js';
export { elementCount, elementTypeOf } from './device.js';
export type { LazyExecutor } from './lazy-compare.js';
export {
  createExecutor as openMergeDevice,
  gpuDeviceNodes,
  openCompareDevice,
  openMergeDeviceOfKind,
  type CompareDeviceOptions,
  type SelectDeviceOptions,
  type SelectedExecutor,
} from './select.js';
// `lorafuse env`: Chromium's merge page (to show its adapter) and Dawn's adapter.
export { asMergeEnvironmentError, MERGE_PAGE_BUNDLE } from './chromium/merge.js';
export { startPageSession, type PageSession } from './chromium/page-session.js';
export { probeDawn, type DawnProbe } from './dawn/probe.js';
// The benchmarks time these as the CLI uses them.
export { startCpuMergePool, type CpuMergePool, type ReadTensorInto } from './cpu/workers.js';
export { startDawnDevice, type DawnDevice } from './dawn/device.js';
