/**
 * A compare device started on first use: where the values of a diff are compared (the compare
 * kernel in headless Chromium or on Dawn in Node, or its CPU reference in Node). Byte identity is
 * settled before a device is asked, so a diff of byte-identical inputs never starts one.
 */
import type { CompareExecutor, DeviceKind } from './device.js';

/**
 * Starts the executor on first use, so a diff of byte-identical inputs never launches Chromium.
 * `description` tells whether it ran.
 */
export class LazyExecutor {
  private pending: Promise<CompareExecutor> | undefined;
  private executor: CompareExecutor | undefined;

  constructor(readonly device: DeviceKind, private readonly start: () => Promise<CompareExecutor>) {}

  get(): Promise<CompareExecutor> {
    this.pending ??= this.start().then((e) => (this.executor = e));
    return this.pending;
  }

  /** The started executor's description, or undefined when it never started. */
  get description(): string | undefined {
    return this.executor?.description;
  }

  async close(): Promise<void> {
    if (this.pending === undefined) return;
    const e = await this.pending.catch(() => undefined);
    await e?.close();
  }
}
