/**
 * Small control messages from the runner page to Node (over a DevTools binding; never tensor bytes).
 * Shared by the page runtime and the Node side.
 */

/**
 * Opens the message of an error the page runtime throws when a transfer to or from lorafuse's local
 * server broke at the network level (fetch rejected: the connection was cut, or Chromium's network
 * service went away). Node reports such an error as the environment's (`PAGE_TRANSFER_FAILED`).
 */
export const TRANSFER_BROKEN = 'lorafuse transfer broken: ';

/** Name of the binding Node exposes in the page (`page.exposeFunction`). */
export const REPORT_BINDING = '__lorafuseReport';

/** What `navigator.gpu` gave the page; reported once at startup. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** `GPUAdapter.features`, sorted. */
  features: string[];
  /** `GPUAdapter.limits`: what the adapter can give. */
  limits: Record<string, number>;
  /** `GPUDevice.limits`: what the page's device was actually created with. */
  deviceLimits: Record<string, number>;
  /** `GPUDevice.features`, sorted. */
  deviceFeatures: string[];
}

/** A message from the page runtime to Node. */
export type PageReport =
  | { type: 'ready'; adapter: AdapterReport }
  | { type: 'init-failed'; code: 'NO_WEBGPU_ADAPTER'; message: string }
  | { type: 'device-lost'; reason: string; message: string }
  | { type: 'uncaptured-error'; message: string };
