/** Argument parsing over `node:util` parseArgs, with usage errors that say what to type instead. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '@lorafuse/core';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Parsed options (by long name) and positional arguments. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Parses `argv` for one command; unknown options and missing values become `UsageError`s. */
export function parseCommandArgs(command: string, argv: readonly string[], options: OptionSpec): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (e) {
    // parseArgs words some errors over several lines ("... is ambiguous.\nDid you forget ..."): one line here.
    const message = (e as Error).message.replace(/\s*\n\s*/g, ' ');
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: ${message}`, { hint: `Run \`lorafuse ${command} --help\` for usage.` });
  }
}

/** Checks a value against a fixed set of choices. */
export function choice<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --${flag} must be one of ${choices.join(', ')}, got "${value}"`, { subject: `--${flag}` });
}

/** {@link choice} for an option with no default: `undefined` when absent. */
export function optionalChoice<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[]): T | undefined {
  return value === undefined ? undefined : choice(command, flag, value, choices, choices[0]!);
}

/** A string option's value (`undefined` when absent). */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a repeatable string option (`multiple: true`), in order; empty when absent. */
export function stringsOption(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** Whether a boolean flag was given. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** A non-negative finite number option (tolerances, counts); `fallback` when absent. */
export function numberOption(command: string, args: ParsedArgs, name: string, fallback: number): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --${name} must be a finite number >= 0, got "${text}"`, { subject: `--${name}` });
  }
  return value;
}

/** A whole-number option of at least `min` (counts: tokens, rows shown); `fallback` when absent. */
export function integerOption(command: string, args: ParsedArgs, name: string, fallback: number, min: number): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --${name} must be a whole number >= ${min}, got "${text}"`, { subject: `--${name}` });
  }
  return value;
}

/**
 * `--weights w1,w2,...`: one finite number per adapter (zero and negative allowed), or `undefined`
 * when absent (every weight 1). A count that differs from the adapters' is a usage error.
 */
export function weightsOption(command: string, args: ParsedArgs, adapters: number): number[] | undefined {
  const text = stringOption(args, 'weights');
  if (text === undefined) return undefined;
  const parts = text.split(',');
  const weights = parts.map((p) => Number(p));
  const bad = parts.findIndex((p, i) => p.trim() === '' || !Number.isFinite(weights[i]));
  if (bad >= 0) {
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --weights must be comma-separated finite numbers, got "${parts[bad]}" in "${text}"`, {
      subject: '--weights',
      hint: 'Give one weight per adapter, e.g. --weights 1,0.5 (write --weights=-1,0.5 when the first is negative).',
    });
  }
  if (weights.length !== adapters) {
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --weights gives ${weights.length} weight(s) for ${adapters} adapter(s)`, {
      subject: '--weights',
      hint: 'Give exactly one weight per adapter, in the order the adapters are named.',
    });
  }
  return weights;
}
