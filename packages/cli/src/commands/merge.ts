import { DEFAULT_MAX_SHARD_SIZE, parseShardSize, UsageError } from '@lorafuse/core';
import { choice, flag, optionalChoice, parseCommandArgs, stringOption, weightsOption } from '../args.js';
import type { Command } from '../command.js';
import type { MergeReport } from '../merge/report.js';
import { runMerge } from '../merge/run-merge.js';
import { formatBytes, type Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse merge <base-dir> <adapter-dir>... --out <out-dir> [--weights w1,w2,...] [options]

Merges one or more PEFT LoRA adapters into a GPT-2 checkpoint and writes a checkpoint transformers loads.

  <base-dir>     config.json + model.safetensors (GPT2LMHeadModel or GPT2Model layout; sharded ok),
                 or the older pytorch_model.bin (or its shards and pytorch_model.bin.index.json)
  <adapter-dir>  adapter_config.json + adapter_model.safetensors (or adapter_model.bin), as PEFT
                 writes them. Several adapters are merged as PEFT's model computes with all of them
                 active together: every merged weight is W + Σ wᵢ·sᵢ·BᵢAᵢ (wᵢ from --weights, sᵢ the
                 adapter's LoRA scaling), each product exact, added in f32 in adapter order and
                 rounded once. That is what add_weighted_adapter(combination_type="cat") followed by
                 merge_and_unload gives, without the cross terms of "linear" or the doubled scaling
                 of "svd" (PEFT <= 0.20). Full tensors (modules_to_save, trained biases, saved
                 embeddings, an added head) and trainable-token rows are values, not deltas: they
                 are not weighted, and two adapters may give the same one only with identical bytes;
                 different values, or one adapter's LoRA on a module another saves whole, are
                 refused (exit 2, nothing written), naming both adapters and the tensor. Each adapter
                 is checked against the base as a single one is; the tie is decided on the combined
                 effect. Adapters that carry a tokenizer must carry the same one.
  A .bin file is read as the zip archive torch.save writes, its pickle interpreted under an
  allow-list (a state dict of float32/float16/bfloat16 tensors) and never run; anything else in it
  is refused by name. safetensors is taken when both kinds are there. The output is safetensors.

Options:
  --out <dir>          output directory (created; must not be or contain an input)
  --weights <list>     one weight per adapter, comma-separated, in the order the adapters are named
                       (default: all 1); zero and negative weights are allowed (write
                       --weights=-1,0.5 when the first is negative)
  --device <d>         auto (default): WebGPU on a real GPU (Dawn in Node, else Chromium), the CPU
                       executor when the only WebGPU adapter is a software fallback (SwiftShader),
                       which is slower end to end; webgpu: WGSL kernels in headless Chromium;
                       dawn: the same kernels on Dawn inside Node (no browser, no transfers);
                       cpu: worker threads in Node
  --overwrite          replace an earlier lorafuse output in <out-dir>: refused if the directory
                       holds anything lorafuse did not write (files other than config.json,
                       model*.safetensors, model.safetensors.index.json and the files copied from
                       <base-dir>; hidden files and sub-directories included), so nothing else is
                       ever deleted; the report lists what was replaced
  --tie <mode>         auto (default): keep wte/lm_head tied exactly when their effective weights are
                       bitwise equal, else store both and set tie_word_embeddings: false;
                       untie: always store both; keep: keep the tie (refused if that would discard
                       trained lm_head weights, unless --force, which reports what is lost)
  --force              with --tie keep: keep the tie even though trained weights are lost
  --follow <side>      when adapter_config.json and the adapter's tensors disagree (PEFT would
                       ignore LoRA tensors of modules its config does not select), which side wins:
                       config: merge what PEFT's unmerged model computes; tensors: merge every saved
                       tensor. Without it, such a disagreement is an error (exit 2)
  --pad-token-id <id>  write pad_token_id: <id> into the output's config.json. Without it, an output
                       that is a GPT2ForSequenceClassification whose config has no pad_token_id gets
                       eos_token_id (transformers refuses batches of more than one sequence without
                       a pad token; training recipes set pad = eos in memory, which the adapter does
                       not record); the report says so
  --max-shard-size <s> split the weights into files of at most <s> of tensor data, as transformers'
                       save_pretrained(max_shard_size=...) does: plain bytes or a number with TB,
                       GB, MB or KB (decimal, as huggingface_hub reads them: 5GB = 5*10^9 bytes;
                       GiB/MiB are refused). Default 50GB, transformers 5's default. A bigger
                       output becomes model-00001-of-0000N.safetensors ... and
                       model.safetensors.index.json; a tensor larger than <s> gets a file of its own
  --allow-nonfinite    write merged tensors even if they contain NaN or Inf
  --json               print one JSON report on stdout
  -h, --help           show this help

The output directory gets model.safetensors (or its shards and index), config.json (changed only where the merge requires it:
vocab_size, tie_word_embeddings, architectures/num_labels, pad_token_id) and every other file of <base-dir> copied
unchanged, except that a tokenizer saved in <adapter-dir> (tokenizer.json, tokenizer_config.json, ...)
replaces the base's: it is the one training used, with any tokens a resized vocabulary added. Before anything is renamed into place, the written checkpoint is re-read and what
transformers (v4 and v5 rules) would load is checked tensor by tensor against what was meant;
a mismatch exits 1. The output is built in a hidden staging directory beside <out-dir> and swapped
into place at once, so a failed or interrupted run (Ctrl-C, SIGTERM, SIGHUP; exit 128 + the signal)
leaves nothing behind and an earlier output as it was. One merge at a time may write <out-dir>;
another is refused while it runs, and leftovers of a killed run are recognised and removed.
Chromium is found via CHROME_PATH, /usr/bin/chromium, or the usual install paths.
`;

export const mergeCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('merge', argv, {
      out: { type: 'string', short: 'o' },
      device: { type: 'string' },
      overwrite: { type: 'boolean' },
      'allow-nonfinite': { type: 'boolean' },
      tie: { type: 'string' },
      force: { type: 'boolean' },
      follow: { type: 'string' },
      'max-shard-size': { type: 'string' },
      weights: { type: 'string' },
      'pad-token-id': { type: 'string' },
      json: { type: 'boolean' },
    });
    const { positionals } = args;
    if (positionals.length < 2) {
      throw new UsageError('BAD_ARGUMENTS', `lorafuse merge: expected <base-dir> and at least one <adapter-dir>, got ${positionals.length} argument(s)`, { hint: 'Run `lorafuse merge --help` for usage.' });
    }
    const adapterDirs = positionals.slice(1);
    const weights = weightsOption('merge', args, adapterDirs.length);
    const outDir = stringOption(args, 'out');
    if (!outDir) throw new UsageError('BAD_ARGUMENTS', 'lorafuse merge: --out <out-dir> is required', { subject: '--out', hint: 'Run `lorafuse merge --help` for usage.' });
    const device = choice('merge', 'device', stringOption(args, 'device'), ['auto', 'webgpu', 'dawn', 'cpu'] as const, 'auto');
    const json = flag(args, 'json');
    const maxShardSize = shardSizeOption(stringOption(args, 'max-shard-size'));
    const report = await runMerge({
      baseDir: positionals[0]!,
      adapterDirs,
      weights,
      outDir,
      device,
      overwrite: flag(args, 'overwrite'),
      allowNonFinite: flag(args, 'allow-nonfinite'),
      tie: choice('merge', 'tie', stringOption(args, 'tie'), ['auto', 'keep', 'untie'] as const, 'auto'),
      force: flag(args, 'force'),
      follow: optionalChoice('merge', 'follow', stringOption(args, 'follow'), ['config', 'tensors'] as const),
      maxShardSize,
      padTokenId: padTokenOption(stringOption(args, 'pad-token-id')),
      io,
      quiet: json,
    });
    if (json) io.stdout.write(terminalJson(report));
    else io.stdout.write(humanReport(report));
    return 0;
  },
};

/** `--pad-token-id` as a token id; anything but a non-negative integer is a usage error. */
function padTokenOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) {
    throw new UsageError('BAD_ARGUMENTS', `lorafuse merge: --pad-token-id must be a non-negative integer token id, got "${text}"`, { subject: '--pad-token-id', hint: 'Example: --pad-token-id 50256 (GPT-2\'s <|endoftext|>).' });
  }
  return Number(text);
}

/** `--max-shard-size` in bytes; a text that is no size is a usage error naming the rule. */
function shardSizeOption(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_SHARD_SIZE;
  const parsed = parseShardSize(text);
  if (parsed.ok) return parsed.bytes;
  throw new UsageError('BAD_SHARD_SIZE', `lorafuse merge: --max-shard-size ${parsed.reason}`, {
    subject: '--max-shard-size',
    hint: 'Give the largest size of one weight file, e.g. --max-shard-size 5GB (GB = 10^9 bytes, as transformers counts).',
  });
}

function humanReport(r: MergeReport): string {
  const lines = [
    `merged ${r.loraModules.length} LoRA module(s)${r.adapters.length > 1 ? ` of ${r.adapters.length} adapters` : ''} into ${r.out} on ${r.device} (${r.deviceDescription})`,
    `  device: ${r.deviceReason}`,
    ...(r.combination ? [...r.adapters.map((a, i) => `  adapter ${i + 1}: ${a.dir}, weight ${a.weight}`), `  computed: ${r.combination.formula}`, `  equivalent to: ${r.combination.peftEquivalent}`] : []),
    `  tensors: ${r.tensors.merged} merged, ${r.tensors.replaced} replaced, ${r.tensors.added} added, ${r.tensors.copied} copied unchanged; ${formatBytes(r.bytesWritten)} written in ${r.seconds.toFixed(2)} s`,
  ];
  const scales = new Map<string, number>();
  for (const m of r.loraModules) {
    const dora = m.dora ? ' (DoRA)' : '';
    const k = r.combination ? `r=${m.rank} alpha=${m.alpha} weight=${m.weight} scale·weight=${m.scale} (${m.adapter})${dora}` : `r=${m.rank} alpha=${m.alpha} scale=${m.scale}${dora}`;
    scales.set(k, (scales.get(k) ?? 0) + 1);
  }
  for (const [k, n] of scales) lines.push(`  ${n} module(s) with ${k}`);
  lines.push(`  tie: ${r.tie.decision} (${r.tie.reason})`);
  for (const c of r.configChanges) lines.push(`  config.json: ${c}`);
  const shards = r.filesWritten.filter((f) => f.endsWith('.safetensors'));
  for (const c of r.copiedByOs) lines.push(`  ${c.file} began as the OS's copy of ${c.from}: ${formatBytes(c.bytes)} of unchanged tensors already in place, the rest written over it`);
  lines.push(`  wrote: ${r.filesWritten.join(', ')}${shards.length > 1 ? ` (${shards.length} shards of at most ${r.maxShardSize} bytes of tensor data each; a bigger tensor alone)` : ''}`);
  if (r.filesCopied.length > 0) lines.push(`  copied from base: ${r.filesCopied.join(', ')}`);
  if (r.filesCopiedFromAdapter.length > 0) lines.push(`  copied from ${r.adapters.length > 1 ? `adapter ${r.tokenizerFrom}` : 'adapter'} (the tokenizer training used, in place of the base's): ${r.filesCopiedFromAdapter.join(', ')}`);
  if (r.replaced.length > 0) lines.push(`  replaced the earlier output's ${r.replaced.join(', ')}`);
  lines.push(`  verified: what transformers ${r.verified.map((v) => v.transformers).join(' and ')} load equals what was meant (${r.verified[0]?.parameters ?? 0} parameters, byte for byte)`);
  for (const f of r.findings) lines.push(`  ${f.severity}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`);
  return terminalLines(lines);
}
