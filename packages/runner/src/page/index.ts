/**
 * `@lorafuse/runner/page`: the browser side of the runner, bundled into the runner page.
 * Browser-only (DOM + WebGPU); no Node APIs. A page entry calls `startPage` first, then
 * `registerPageApi`.
 */
export { startPage, getDevice, fetchBytes, postBytes, registerPageApi, type StartPageOptions, type PageFunction } from './runtime.js';
export type { AdapterReport, PageReport } from './protocol.js';
