import { UsageError } from '@lorafuse/core';
import { choice, flag, integerOption, numberOption, optionalChoice, parseCommandArgs, stringOption, stringsOption, weightsOption } from '../args.js';
import type { Command } from '../command.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';
import { behaviourLines } from '../forward/behaviour-check.js';
import { runVerify, type VerifyCommandReport } from '../verify/run-verify.js';

const HELP = `Usage: lorafuse verify <out-dir> --base <base-dir> --adapter <adapter-dir> [--adapter <dir>...] [--weights w1,...] [options]

Checks any merged directory — lorafuse's, or one written by PEFT's merge_and_unload + save_pretrained —
against base + adapter (or base + several adapters active together, as \`lorafuse merge\` merges them): emulates what transformers (v4 and v5 rules) loads from <out-dir> and compares
every parameter with the effective weight of the unmerged PEFT model. Copied tensors must be
byte-identical (or within tolerance if re-encoded); merged tensors within --atol/--rtol of the
merge recomputed on --device. A tie kept while lm_head was trained shows up as lm_head.weight.

Options:
  --base <dir>       the base checkpoint the adapter was trained on (required)
  --adapter <dir>    the PEFT adapter directory (required); repeat it for a merge of several
                     adapters, in the order they were merged
  --weights <list>   one weight per --adapter, comma-separated (default: all 1), as given to merge;
                     write --weights=-1,0.5 when the first is negative
  --atol <x>         absolute tolerance (default 1e-6)
  --rtol <x>         relative tolerance (default 1e-5; at least one ulp for F16/BF16 tensors)
  --device <d>       cpu (default), webgpu (Chromium) or dawn (Dawn in Node), to recompute merged tensors
  --allow-nonfinite  NaN in a merged tensor equals NaN (for outputs of merge --allow-nonfinite);
                     Inf always equals Inf of the same sign
  --follow <side>    when adapter_config.json and the adapter's tensors disagree (PEFT would
                     ignore LoRA tensors of modules its config does not select), which side wins:
                     config: merge what PEFT's unmerged model computes; tensors: merge every saved
                     tensor. Without it, such a disagreement is an error (exit 2)
  --behaviour        also run GPT-2's forward pass on <out-dir> (as transformers loads it) and on
                     base + adapter(s) applied unmerged (each adapter's LoRA output times its
                     weight, all active together), and compare logits (tolerance 1e-4 abs + rel
                     for F32 weights, 1e-2 for F16, 5e-2 for BF16), top-1 tokens and greedy decoding;
                     default probes: token ids spread over the vocabulary at every position the
                     work budget allows (all of n_positions for small models) and the rows a
                     resized vocabulary added
  --ids <list>       with --behaviour: probe with these token ids instead
  --prompt <text>    with --behaviour: probe with this text (needs tokenizer.json)
  --tokens <n>       with --behaviour: greedy tokens compared (default 20)
  --transformers <v> with --behaviour: v5 (default) or v4 loading rules for the forward pass
                     (the forward pass runs on --device: cpu reference, webgpu or dawn kernels)
  --json             print one JSON document on stdout
  -h, --help         show this help

Exit codes: 0 verified, 1 something differs, 2 usage or input error.
`;


export const verifyCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('verify', argv, {
      base: { type: 'string' },
      adapter: { type: 'string', multiple: true },
      weights: { type: 'string' },
      atol: { type: 'string' },
      rtol: { type: 'string' },
      device: { type: 'string' },
      'allow-nonfinite': { type: 'boolean' },
      follow: { type: 'string' },
      behaviour: { type: 'boolean' },
      ids: { type: 'string' },
      prompt: { type: 'string' },
      tokens: { type: 'string' },
      transformers: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (args.positionals.length !== 1) throw new UsageError('BAD_ARGUMENTS', 'lorafuse verify: expected one <out-dir>', { hint: 'Run `lorafuse verify --help`.' });
    const baseDir = stringOption(args, 'base');
    const adapterDirs = stringsOption(args, 'adapter');
    if (!baseDir || adapterDirs.length === 0) throw new UsageError('BAD_ARGUMENTS', 'lorafuse verify: --base <dir> and --adapter <dir> are required', { hint: 'Run `lorafuse verify --help`.' });
    const json = flag(args, 'json');
    const behaviour = flag(args, 'behaviour');
    for (const f of ['ids', 'prompt', 'tokens', 'transformers']) {
      if (!behaviour && args.values[f] !== undefined) throw new UsageError('BAD_ARGUMENTS', `lorafuse verify: --${f} goes with --behaviour`, { subject: `--${f}`, hint: 'Add --behaviour, or leave it out.' });
    }
    const report = await runVerify({
      outDir: args.positionals[0]!,
      baseDir,
      adapterDirs,
      weights: weightsOption('verify', args, adapterDirs.length),
      atol: numberOption('verify', args, 'atol', 1e-6),
      rtol: numberOption('verify', args, 'rtol', 1e-5),
      device: choice('verify', 'device', stringOption(args, 'device'), ['cpu', 'webgpu', 'dawn'] as const, 'cpu'),
      allowNonFinite: flag(args, 'allow-nonfinite'),
      follow: optionalChoice('verify', 'follow', stringOption(args, 'follow'), ['config', 'tensors'] as const),
      behaviour: behaviour
        ? {
            ids: stringOption(args, 'ids'),
            prompt: stringOption(args, 'prompt'),
            tokens: integerOption('verify', args, 'tokens', 20, 0),
            version: choice('verify', 'transformers', stringOption(args, 'transformers'), ['v5', 'v4'] as const, 'v5'),
            // The forward pass runs on the same device as the recomputed merges.
            device: choice('verify', 'device', stringOption(args, 'device'), ['cpu', 'webgpu', 'dawn'] as const, 'cpu'),
          }
        : undefined,
      io,
      quiet: json,
    });
    if (json) io.stdout.write(terminalJson(report));
    else io.stdout.write(humanVerify(report));
    return report.ok ? 0 : 1;
  },
};

function humanVerify(r: VerifyCommandReport): string {
  const lines: string[] = [];
  for (const v of r.byVersion) {
    const bad = v.checks.filter((c) => !c.ok).length;
    lines.push(`transformers ${v.version}: ${v.checks.length} parameters, ${bad === 0 ? 'all as meant' : `${bad} differ`}${v.tied ? ' (lm_head tied to wte)' : ''}`);
    for (const d of v.discarded) lines.push(`  discarded on load: ${d.name}: ${d.reason}`);
    for (const n of v.notes) lines.push(`  note: ${n}`);
  }
  for (const f of r.failures) lines.push(`FAIL ${f.name} [${f.versions.join(', ')}]: ${f.detail}`);
  for (const e of r.extraFailures) lines.push(`FAIL ${e}`);
  if (r.behaviour) lines.push(...behaviourLines(r.behaviour));
  const what = r.adapters.length > 1 || r.adapters.some((a) => a.weight !== 1) ? `base + ${r.adapters.map((a) => `${a.weight} × ${a.dir}`).join(' + ')}` : 'base + adapter';
  lines.push(r.ok ? `verified: ${r.out} loads as ${what}` : `verification FAILED for ${r.out}`);
  return terminalLines(lines);
}
