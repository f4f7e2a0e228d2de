import { diagnose, LorafuseError, tryPlanMerge, UsageError, type Finding } from '@lorafuse/core';
import { checkDuplicateCopies } from '../proof/check-duplicates.js';
import { flag, parseCommandArgs, weightsOption } from '../args.js';
import type { Command } from '../command.js';
import { openAdapterDir, openBaseDir, OpenFiles, planInputOf, type AdapterDir } from '../fs/inputs.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse doctor <base-dir> <adapter-dir>... [--weights w1,...] [--json]

Checks an adapter against its base for the misconfigurations that make merged GPT-2 models go wrong:
target_modules that match nothing in GPT-2 (e.g. BERT's query/value), names PEFT silently ignored,
a module in both target_modules and modules_to_save, only one side of the tied wte/lm_head pair
trained, a resized vocabulary without the embedding weights saved, fan_in_fan_out on Conv1D,
.bin files whose pickle asks for more than a state dict, Git LFS pointer files instead of weights,
a different base model name, and everything merge would refuse. Each finding has a severity and a fix.
With several adapters (as \`lorafuse merge\` takes them), each is checked against the base and the tied
pair on their combined effect; several adapters training one module, at any ranks, is fine (a note),
while two adapters saving one tensor whole with different values (or one's LoRA on a module another
saves whole) is an error.

Exit codes: 0 no errors (warnings allowed), 2 at least one error. merge runs the same checks first.

Options:
  --weights <list>  one weight per adapter, comma-separated, as merge takes them (default: all 1)
  --json            print one JSON document on stdout
  -h, --help        show this help
`;

/** Opens the directories and diagnoses them; a file that cannot be opened is itself an error finding. */
export async function doctorFindings(baseDir: string, adapterDirs: readonly string[], weights?: readonly number[]): Promise<Finding[]> {
  const files = new OpenFiles();
  try {
    const opened: Finding[] = [];
    const base = await openBaseDir(baseDir, files).catch((e: unknown) => asFinding(e, opened));
    const adapters: Array<AdapterDir | undefined> = [];
    for (const dir of adapterDirs) adapters.push(await openAdapterDir(dir, files).catch((e: unknown) => asFinding(e, opened)));
    if (!base || adapters.some((a) => a === undefined)) return opened;
    const input = planInputOf(base, adapters as AdapterDir[], weights);
    const planned = tryPlanMerge(input);
    const findings = diagnose(input, planned);
    // A tensor given twice (by one adapter, or by two) must hold the same bytes: merge checks that
    // before writing, so the doctor reads them too.
    if (!(planned instanceof LorafuseError)) await checkDuplicateCopies(planned, files).catch((e: unknown) => asFinding(e, findings));
    return findings;
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
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('doctor', argv, { json: { type: 'boolean' }, weights: { type: 'string' } });
    if (args.positionals.length < 2) throw new UsageError('BAD_ARGUMENTS', 'lorafuse doctor: expected <base-dir> and at least one <adapter-dir>', { hint: 'Run `lorafuse doctor --help`.' });
    const adapterDirs = args.positionals.slice(1);
    const findings = await doctorFindings(args.positionals[0]!, adapterDirs, weightsOption('doctor', args, adapterDirs.length));
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
