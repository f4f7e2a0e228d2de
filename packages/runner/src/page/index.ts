/**
 * `@lorafuse/runner/page`: the browser side of the runner, bundled into the runner page.
 * Browser-only (DOM + WebGPU); no Node APIs.
 */
export { getDevice, fetchBytes, postBytes, registerPageApi, RAISED_LIMITS, OPTIONAL_FEATURES, type PageFunction } from './runtime.js';
export type { AdapterReport, PageReport } from './protocol.js';
