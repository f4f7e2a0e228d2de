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
// The GPU wings load when first used: a merge on the CPU (the default without a GPU) never loads
// Dawn's, Chromium's or the runner's modules, ~45 ms of every start.
export type { PageSession } from './chromium/page-session.js';
export type { DawnProbe } from './dawn/probe.js';
export type { DawnDevice } from './dawn/device.js';
type PageSessionWing = typeof import('./chromium/page-session.js');
type DawnDeviceWing = typeof import('./dawn/device.js');
/** `lorafuse env`: Chromium's merge page (to show its adapter) and how its failures are told. */
export const chromiumMergeWing = async () => {
  const { asMergeEnvironmentError, MERGE_PAGE_BUNDLE } = await import('./chromium/merge.js');
  return { asMergeEnvironmentError, MERGE_PAGE_BUNDLE };
};
/** `lorafuse env`: the adapter Dawn finds, or why it does not start. */
export const probeDawn = async () => (await import('./dawn/probe.js')).probeDawn();
/** A headless Chromium page with a bundle loaded (the forward pass's page). */
export const startPageSession = async (...args: Parameters<PageSessionWing['startPageSession']>) => (await import('./chromium/page-session.js')).startPageSession(...args);
// The benchmarks time these as the CLI uses them.
export { startCpuMergePool, type CpuMergePool, type ReadTensorInto } from './cpu/workers.js';
/** A Dawn device in Node on the drivers `lorafuse merge --device dawn` would use. */
export const startDawnDevice = async (...args: Parameters<DawnDeviceWing['startDawnDevice']>) => (await import('./dawn/device.js')).startDawnDevice(...args);
