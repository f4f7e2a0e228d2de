/**
 * Signals during a run: Ctrl-C (SIGINT), SIGTERM, SIGHUP (a closed terminal, a dropped ssh), SIGQUIT
 * and SIGUSR2 undo what the run started (partial output, the browser), say so, and exit 128 + the
 * signal's number as shells expect. The cleanup first stops new work and waits for I/O in flight,
 * and is bounded: after {@link CLEANUP_LIMIT_MS}, or at a second signal, the synchronous last resort
 * runs and the process exits anyway. Registered per run; unregistered when it ends.
 */
import { constants } from 'node:os';

/** The signals a run handles. */
export const HANDLED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const;
type HandledSignal = (typeof HANDLED_SIGNALS)[number];

/** How long a cleanup may take before the process removes what it can synchronously and exits. */
export const CLEANUP_LIMIT_MS = 5_000;

const WORDS: Record<HandledSignal, string> = {
  SIGINT: 'interrupted',
  SIGTERM: 'terminated',
  SIGHUP: 'hung up (the terminal closed)',
  SIGQUIT: 'quit',
  SIGUSR2: 'stopped by SIGUSR2',
};

/** The exit code for `signal`: 128 + its number. */
export function exitCodeOfSignal(signal: HandledSignal): number {
  return 128 + constants.signals[signal];
}

/** How a run is undone. */
export interface InterruptCleanup {
  /** Stops new work, waits for work in flight, then removes what the run made. */
  graceful(): Promise<void>;
  /** Removes what is left, synchronously, when there is no time to wait. Must not throw. */
  forced(): void;
}

/** A registration: {@link dispose} when the run ends; {@link exiting} once a signal arrived. */
export interface InterruptGuard {
  dispose(): void;
  /** Set once a signal arrived: settles never (the process exits when the cleanup is done). */
  readonly exiting: Promise<never> | undefined;
}

function say(stderr: NodeJS.WritableStream, text: string): void {
  try {
    stderr.write(text);
  } catch {
    /* the terminal may be gone (SIGHUP) */
  }
}

/** Registers `cleanup` for the handled signals until `dispose()`. */
export function onInterrupt(cleanup: InterruptCleanup, stderr: NodeJS.WritableStream = process.stderr, limitMs = CLEANUP_LIMIT_MS): InterruptGuard {
  let exiting: Promise<never> | undefined;
  let finishing = false;
  const finish = (code: number): void => {
    if (finishing) return;
    finishing = true;
    try {
      cleanup.forced();
    } finally {
      process.exit(code);
    }
  };
  const handler = (signal: NodeJS.Signals): void => {
    const name = signal as HandledSignal;
    const code = exitCodeOfSignal(name);
    if (exiting) {
      say(stderr, `lorafuse: ${signal} again; removing partial output now\n`);
      finish(code);
      return;
    }
    // From here on the run is being torn down: its failing operations are expected, and none may end
    // the process with a stack trace before the cleanup is done.
    const ignore = (): void => undefined;
    process.on('unhandledRejection', ignore);
    process.on('uncaughtException', ignore);
    stderr.on('error', ignore);
    say(stderr, `\nlorafuse: ${WORDS[name]}; removing partial output\n`);
    exiting = new Promise<never>(() => {
      const timer = setTimeout(() => finish(code), limitMs);
      cleanup
        .graceful()
        .catch(() => undefined)
        .finally(() => {
          clearTimeout(timer);
          finish(code);
        });
    });
  };
  for (const s of HANDLED_SIGNALS) process.on(s, handler);
  return {
    dispose: () => {
      for (const s of HANDLED_SIGNALS) process.off(s, handler);
    },
    get exiting() {
      return exiting;
    },
  };
}
