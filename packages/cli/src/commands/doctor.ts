import { diagnose, LorafuseError, UsageError, type Finding } from '@lorafuse/core';
import { flag, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { openAdapterDir, openBaseDir, OpenFiles } from '../fs/inputs.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse doctor <base-dir> <adapter-dir> [--json]

Checks an adapter against its base for the misconfigurations that make merged GPT-2 models go wrong:
target_modules that match nothing in GPT-2 (e.g. BERT's query/value), names PEFT silently ignored,
a module in both target_modules and modules_to_save, only one side of the tied wte/lm_head pair
trained, a resized vocabulary without the embedding weights saved, fan_in_fan_out on Conv1D,
.bin files whose pickle asks for more than a state dict, Git LFS pointer files instead of weights,
a different base model name, and everything merge would refuse. Each finding has a severity and a fix.

Exit codes: 0 no errors (warnings allowed), 2 at least one error. merge runs the same checks first.

Options:
  --json       print one JSON document on stdout
  -h, --help   show this help
`;

/** Opens both directories and diagnoses them; a file that cannot be opened is itself an error finding. */
export async function doctorFindings(baseDir: string, adapterDir: string): Promise<Finding[]> {
  const files = new OpenFiles();
  try {
    const opened: Finding[] = [];
    const base = await openBaseDir(baseDir, files).catch((e: unknown) => asFinding(e, opened));
    const adapter = await openAdapterDir(adapterDir, files).catch((e: unknown) => asFinding(e, opened));
    if (!base || !adapter) return opened;
    return diagnose({
      base: { label: base.dir, config: base.config, files: base.headers },
      adapter: { label: adapter.dir, config: adapter.config, file: adapter.header },
    });
  } finally {
    await files.closeAll();
  }
}

function asFinding(e: unknown, into: Finding[]): undefined {
  if (!(e instanceof LorafuseError)) throw e;
  into.push({ severity: 'error', code: e.code, message: e.message, ...(e.hint ? { fix: e.hint } : {}), ...(e.subject ? { subject: e.subject } : {}) });
  return undefined;
}

/** The human lines of the findings, most severe first: one per finding, and one per fix. */
export function findingLines(findings: readonly Finding[]): string[] {
  const order = { error: 0, warning: 1, info: 2 } as const;
  return [...findings]
    .sort((a, b) => order[a.severity] - order[b.severity])
    .flatMap((f) => [`${f.severity.padEnd(7)} ${f.code}: ${f.message}`, ...(f.fix ? [`        fix: ${f.fix}`] : [])]);
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check an adapter and its base for misconfigurations, with a fix for each',
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('doctor', argv, { json: { type: 'boolean' } });
    if (args.positionals.length !== 2) throw new UsageError('BAD_ARGUMENTS', 'lorafuse doctor: expected <base-dir> and <adapter-dir>', { hint: 'Run `lorafuse doctor --help`.' });
    const findings = await doctorFindings(args.positionals[0]!, args.positionals[1]!);
    const errors = findings.filter((f) => f.severity === 'error').length;
    const warnings = findings.filter((f) => f.severity === 'warning').length;
    const code = errors > 0 ? 2 : 0;
    if (flag(args, 'json')) {
      io.stdout.write(terminalJson({ ok: errors === 0, exitCode: code, errors, warnings, findings }));
    } else {
      const summary = `${errors} error(s), ${warnings} warning(s): ${errors > 0 ? 'merge would stop' : 'ready to merge'}`;
      io.stdout.write(terminalLines([...(findings.length === 0 ? ['no findings'] : findingLines(findings)), '', summary]));
    }
    return code;
  },
};
