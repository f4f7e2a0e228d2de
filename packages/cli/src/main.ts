/**
 * The `lorafuse` command: a command table, `--help` everywhere, and the one place where errors
 * become exit codes (0 ok, 1 verification failed, 2 usage or input error).
 */
import { exitCodeFor, LorafuseError } from '@lorafuse/core';
import { wantsHelp, wantsJson, type Command } from './command.js';
import { fromUnmappedFsError } from './fs/fs-error.js';
import { ignoreClosedPipes, processIo, type Io } from './output.js';
import { terminalJson, terminalLines } from './terminal-text.js';

/** A command as `lorafuse --help` lists it; its code is loaded only when it runs. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

// Each run loads one command's modules, not all eight (a merge need not load the forward pass, diff
// or verify): ~70 ms of every start.
export const commands: readonly CommandEntry[] = [
  { name: 'merge', summary: 'merge LoRA adapters (one or several, weighted) into a GPT-2 checkpoint', load: async () => (await import('./commands/merge.js')).mergeCommand },
  { name: 'verify', summary: 'check that a merged directory loads as base + adapter (also PEFT-written ones)', load: async () => (await import('./commands/verify.js')).verifyCommand },
  { name: 'diff', summary: 'compare two checkpoints, adapters or .safetensors files tensor by tensor', load: async () => (await import('./commands/diff.js')).diffCommand },
  { name: 'doctor', summary: 'check adapters and their base for misconfigurations, with a fix for each', load: async () => (await import('./commands/doctor.js')).doctorCommand },
  { name: 'inspect', summary: 'show tensors, dtypes, shapes, config and tie status of a checkpoint or adapter', load: async () => (await import('./commands/inspect.js')).inspectCommand },
  { name: 'logits', summary: 'run the GPT-2 forward pass (a checkpoint, or base + adapter unmerged) and print logits', load: async () => (await import('./commands/logits.js')).logitsCommand },
  { name: 'generate', summary: 'greedy text generation from a checkpoint, or base + adapter unmerged', load: async () => (await import('./commands/generate.js')).generateCommand },
  { name: 'env', summary: 'show Chromium path/version and the WebGPU adapter with its limits', load: async () => (await import('./commands/env.js')).envCommand },
];

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'lorafuse — merge PEFT LoRA adapters into GPT-2 checkpoints with WebGPU, and prove the result.',
    '',
    'Usage: lorafuse <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `lorafuse <command> --help` for a command\'s options.',
    'Exit codes: 0 ok, 1 verification failed, 2 usage or input error.',
    '',
  ].join('\n');
}

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  ignoreClosedPipes(io);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write('lorafuse 0.1.0\n');
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr.write(`${terminalLines([`lorafuse: unknown command "${name}"`])}\n${topHelp()}`);
    return 2;
  }
  const command = await entry.load();
  if (wantsHelp(rest)) {
    io.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    return reportError(error, wantsJson(rest), io);
  }
}

/**
 * Prints an error without a stack trace (unless LORAFUSE_DEBUG is set) and returns its exit code.
 * Every error thrown on purpose, the runner's included, is a `LorafuseError`, and so is an OS error
 * that names a path once mapped here; anything else is a bug.
 */
export function reportError(thrown: unknown, json: boolean, io: Io): number {
  // An OS error that names a path is the machine's or the path's, never a bug: say what failed.
  const error = fromUnmappedFsError(thrown);
  const code = exitCodeFor(error);
  const known = error instanceof LorafuseError;
  const data = known
    ? error.toJSON()
    : { name: 'InternalError', code: 'INTERNAL', kind: 'internal', message: error instanceof Error ? error.message : String(error) };
  if (json) {
    io.stdout.write(terminalJson({ ok: false, exitCode: code, error: data }));
  } else {
    const lines = [`lorafuse: error: ${data.message}`];
    if ('hint' in data && data.hint) lines.push(`  what to do: ${data.hint}`);
    if (!known) lines.push('  this is a bug in lorafuse; please report it with the command you ran (set LORAFUSE_DEBUG=1 for details).');
    io.stderr.write(terminalLines(lines));
  }
  if (process.env['LORAFUSE_DEBUG']) {
    // With the causes: a page's error keeps its own stack there.
    for (let e: unknown = thrown, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
      io.stderr.write(terminalLines([...(depth > 0 ? ['caused by:'] : []), ...(e.stack ?? e.message).split('\n')]));
    }
  }
  return code;
}
