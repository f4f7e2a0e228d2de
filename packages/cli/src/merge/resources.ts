/**
 * What a merge holds while it runs — open input files, the device (possibly still starting), the
 * output transaction — released together on every way out: success, failure, or a signal. On a
 * signal nothing new starts, the output is aborted once its writes in flight are done, then the
 * device and the files are closed; the process exits when that is done (or its time is up).
 */
import { EnvironmentError } from '@lorafuse/core';
import { openMergeDevice, startCpuMergePool, type CpuMergePool, type DeviceChoice, type MergeExecutor, type SelectedExecutor } from '../devices/index.js';
import { OpenFiles } from '../fs/inputs.js';
import { OutputTransaction, type OutputOptions } from '../fs/output-dir.js';
import { onInterrupt, type InterruptGuard } from '../interrupt.js';
import { terminalLines } from '../terminal-text.js';

function stopped(): EnvironmentError {
  return new EnvironmentError('RUN_STOPPED', 'the run is being stopped by a signal');
}

/** The resources of one merge run. */
export class MergeResources {
  readonly files = new OpenFiles();
  private pool: CpuMergePool | undefined;
  private output: OutputTransaction | undefined;
  private executor: MergeExecutor | undefined;
  private starting: Promise<SelectedExecutor> | undefined;
  private closing: Promise<void> | undefined;
  private stopping = false;
  private readonly guard: InterruptGuard;

  /**
   * The run's worker threads: the CPU executor merges on them, and the proof reads the written
   * files on them whatever the device. Started with the device, not before: while the inputs are
   * opened and planned, their start would take the cores from that work (60 ms later, measured).
   */
  get threads(): CpuMergePool {
    this.pool ??= startCpuMergePool();
    return this.pool;
  }

  constructor(private readonly stderr: NodeJS.WritableStream) {
    this.guard = onInterrupt({ graceful: () => this.stop(), forced: () => this.output?.abandonSync() }, stderr);
  }

  /** Begins the output transaction (lock, leftovers of dead runs, staging); says what it cleared. */
  async openOutput(dir: string, options: OutputOptions): Promise<OutputTransaction> {
    if (this.stopping) throw stopped();
    const tx = new OutputTransaction(dir, options);
    this.output = tx;
    await tx.begin();
    // Notes name paths found on disk, which may hold control characters.
    this.stderr.write(terminalLines(tx.notes.splice(0).map((note) => `lorafuse: ${note}`)));
    return tx;
  }

  /**
   * Starts the device without waiting for it (a browser takes a while; unchanged tensors are copied
   * meanwhile). Both promises are awaited where they are used and in {@link release}; until then a
   * failure must not count as unhandled (Node would end the process with a stack trace).
   */
  startDevice(choice: DeviceChoice): { selected: Promise<SelectedExecutor>; executor: Promise<MergeExecutor> } {
    const selected = this.stopping
      ? Promise.reject(stopped())
      : openMergeDevice(choice, this.files, { cpuPool: this.threads }).then((s) => {
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

  /** On a signal: stop new work, abort the output after its writes in flight, close the device and files. */
  private async stop(): Promise<void> {
    this.stopping = true;
    await this.output?.abort();
    // A browser still starting is closed too (the executor does not exist yet then); another
    // device is closed once it has started.
    // The runner is loaded only if a browser device was chosen; loading it here finds no browser otherwise.
    const closeBrowsers = import('@lorafuse/runner').then((r) => r.closeAllBrowserRunners());
    await Promise.allSettled([closeBrowsers, this.starting?.then((s) => s.executor.close()), this.closing]);
    // Before the files: a worker may be reading through one of their descriptors.
    await this.pool?.close();
    await this.files.closeAll();
  }

  /** Aborts an uncommitted output, closes the device (once started) and the files. */
  async release(): Promise<void> {
    // A signal's cleanup owns the teardown and ends the process: wait for it (the handler must stay
    // registered, so that a second signal still finds it).
    if (this.guard.exiting) await this.guard.exiting;
    try {
      await this.output?.abort();
      await this.starting?.catch(() => undefined);
      await (this.closing ?? this.executor?.close());
      await this.pool?.close();
      await this.files.closeAll();
    } finally {
      if (this.guard.exiting) await this.guard.exiting;
      this.guard.dispose();
    }
  }
}
