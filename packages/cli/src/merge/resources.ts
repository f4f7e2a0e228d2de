/**
 * What a merge holds while it runs — open input files, the device (possibly still starting), the
 * output transaction — released together on every way out: success, failure, or a signal.
 */
import { closeAllBrowserRunners } from '@lorafuse/runner';
import { openMergeDevice, type DeviceChoice, type MergeExecutor, type SelectedExecutor } from '../devices/index.js';
import { OpenFiles } from '../fs/inputs.js';
import type { OutputTransaction } from '../fs/output-dir.js';
import { onInterrupt } from '../interrupt.js';

/** The resources of one merge run. */
export class MergeResources {
  readonly files = new OpenFiles();
  /** Set while the output is being written; cleared once committed. */
  tx: OutputTransaction | undefined;
  private executor: MergeExecutor | undefined;
  private starting: Promise<SelectedExecutor> | undefined;
  private closing: Promise<void> | undefined;
  private readonly stopListening: () => void;

  constructor(stderr: NodeJS.WritableStream) {
    this.stopListening = onInterrupt(async () => {
      await this.tx?.abort();
      // Also a browser still starting (the executor does not exist yet then).
      await Promise.all([this.executor?.close(), closeAllBrowserRunners()]);
      await this.files.closeAll();
    }, stderr);
  }

  /**
   * Starts the device without waiting for it (a browser takes a while; unchanged tensors are copied
   * meanwhile). Both promises are awaited where they are used and in {@link release}; until then a
   * failure must not count as unhandled (Node would end the process with a stack trace).
   */
  startDevice(choice: DeviceChoice): { selected: Promise<SelectedExecutor>; executor: Promise<MergeExecutor> } {
    const selected = openMergeDevice(choice, this.files).then((s) => {
      this.executor = s.executor;
      return s;
    });
    this.starting = selected;
    const executor = selected.then((s) => s.executor);
    for (const p of [selected, executor]) p.catch(() => undefined);
    return { selected, executor };
  }

  /** Nothing more to merge: the device shuts down in the background (awaited by {@link release}). */
  closeDevice(): void {
    this.closing = this.executor?.close();
    this.closing?.catch(() => undefined);
  }

  /** Aborts an uncommitted output, closes the device (once started) and the files. */
  async release(): Promise<void> {
    try {
      if (this.tx) await this.tx.abort();
      await this.starting?.catch(() => undefined);
      await (this.closing ?? this.executor?.close());
      await this.files.closeAll();
    } finally {
      this.stopListening();
    }
  }
}
