import type { Io } from './output.js';

/** One CLI command (named and summarised in `main.ts`'s table): returns its exit code or throws a typed error (mapped there). */
export interface Command {
  /** Full `--help` text. */
  readonly help: string;
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** True when `--help` or `-h` is among the arguments. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** True when `--json` is among the arguments (also consulted when reporting errors). */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}
