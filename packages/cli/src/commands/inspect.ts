import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { canonicalName, isTorchWeightsFile, parseAdapterKey, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT, UsageError, type SafetensorsHeader } from '@lorafuse/core';
import { flag, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { fromFsError } from '../fs/fs-error.js';
import { statInputFile } from '../fs/input-file.js';
import { openAdapterDir, openBaseDir, OpenFiles } from '../fs/inputs.js';
import { readInputHeader } from '../fs/read-header.js';
import { formatBytes, type Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse inspect <dir-or-file> [--json]

Shows what a checkpoint directory, PEFT adapter directory, .safetensors file or PyTorch .bin file
(torch.save's zip archive, read without running its pickle) holds: tensors with
dtype and shape, a config summary, and whether lm_head is tied to wte and how transformers will load it.

Options:
  --json       print one JSON document on stdout
  -h, --help   show this help
`;

interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  role?: string;
}

/** How lm_head relates to wte in a checkpoint, and what transformers v4 and v5 will load for it (docs/tied-embeddings.md). */
export interface TieStatus {
  tieWordEmbeddings: boolean;
  lmHeadStored: boolean;
  summary: string;
}

/** Describes the tie from config and stored keys. */
export function describeTie(config: Record<string, unknown>, storedCanonical: ReadonlySet<string>): TieStatus {
  const tie = config['tie_word_embeddings'] !== false;
  const lmHeadStored = storedCanonical.has(TIED_OUTPUT_WEIGHT);
  const hasWte = storedCanonical.has(TIED_INPUT_WEIGHT);
  let summary: string;
  if (tie && !lmHeadStored) summary = 'tied: lm_head.weight is not stored; transformers uses wte for it';
  else if (tie && lmHeadStored) summary = 'tied in config.json, but lm_head.weight is stored too: transformers v4 discards it, v5 keeps it only if it differs from wte';
  else if (!tie && lmHeadStored) summary = 'untied: wte and lm_head are stored separately';
  else summary = 'untied in config.json but lm_head.weight is missing: transformers initialises lm_head randomly';
  if (!hasWte) summary += ' (no wte.weight stored)';
  return { tieWordEmbeddings: tie, lmHeadStored, summary };
}

function rows(header: SafetensorsHeader, role?: (name: string) => string | undefined): TensorRow[] {
  return header.tensors.map((t) => {
    const r = role?.(t.name);
    return { name: t.name, dtype: t.dtype, shape: [...t.shape], bytes: t.byteLength, ...(r ? { role: r } : {}) };
  });
}

export const inspectCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('inspect', argv, { json: { type: 'boolean' } });
    const { positionals } = args;
    if (positionals.length !== 1) throw new UsageError('BAD_ARGUMENTS', 'lorafuse inspect: expected one <dir-or-file>', { hint: 'Run `lorafuse inspect --help`.' });
    const target = resolve(positionals[0]!);
    const files = new OpenFiles();
    try {
      let doc: Record<string, unknown>;
      const s = await stat(target).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw fromFsError(e, target, 'read', 'input');
      });
      if (!s) throw new UsageError('NOT_FOUND', `${target} does not exist`, { subject: target });
      if (!s.isDirectory()) await statInputFile(target); // a FIFO, device or socket is refused by name
      if (s.isFile()) {
        const header = await readInputHeader(files, target);
        doc = isTorchWeightsFile(target)
          ? { kind: 'torch', path: target, tensors: rows(header) }
          : { kind: 'safetensors', path: target, metadata: header.metadata, tensors: rows(header) };
      } else if (await stat(resolve(target, 'adapter_config.json')).then(() => true, () => false)) {
        const adapter = await openAdapterDir(target, files);
        const c = adapter.config;
        doc = {
          kind: 'adapter',
          path: target,
          config: {
            peft_type: c.peftType,
            task_type: c.taskType,
            base_model_name_or_path: c.baseModelNameOrPath,
            r: c.r,
            lora_alpha: c.loraAlpha,
            use_rslora: c.useRslora,
            target_modules: c.targetModules,
            modules_to_save: c.modulesToSave,
            rank_pattern: Object.fromEntries(c.rankPattern),
            alpha_pattern: Object.fromEntries(c.alphaPattern),
            fan_in_fan_out: c.fanInFanOut,
            bias: c.bias,
            use_dora: c.useDora,
          },
          tensors: rows(adapter.header, (name) => {
            const k = parseAdapterKey(name);
            return k.kind === 'replacement' ? `replaces ${canonicalName(k.tensorPath)}` : `${k.kind}${'modulePath' in k ? ` of ${k.modulePath}` : ''}`;
          }),
        };
      } else {
        const base = await openBaseDir(target, files);
        const all = base.headers.flatMap((h) => rows(h));
        const canonical = new Set(all.map((t) => canonicalName(t.name)));
        const cfg = base.config;
        doc = {
          kind: 'checkpoint',
          path: target,
          files: base.weightFiles,
          keyLayout: all.some((t) => t.name.startsWith('transformer.')) ? 'GPT2LMHeadModel (transformer. prefix)' : 'GPT2Model (no prefix)',
          config: {
            architectures: cfg['architectures'] ?? null,
            model_type: cfg['model_type'] ?? null,
            vocab_size: cfg['vocab_size'] ?? null,
            n_embd: cfg['n_embd'] ?? null,
            n_layer: cfg['n_layer'] ?? null,
            n_head: cfg['n_head'] ?? null,
            n_positions: cfg['n_positions'] ?? null,
            tie_word_embeddings: cfg['tie_word_embeddings'] ?? null,
            torch_dtype: cfg['torch_dtype'] ?? cfg['dtype'] ?? null,
          },
          tie: describeTie(cfg, canonical),
          parameters: all.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
          tensors: all,
        };
      }
      if (flag(args, 'json')) io.stdout.write(terminalJson(doc));
      else io.stdout.write(humanInspect(doc));
      return 0;
    } finally {
      await files.closeAll();
    }
  },
};

function humanInspect(doc: Record<string, unknown>): string {
  const lines: string[] = [`${doc['kind']}: ${doc['path']}`];
  if (doc['keyLayout']) lines.push(`key layout: ${doc['keyLayout']}`);
  if (doc['config']) {
    const cfg = doc['config'] as Record<string, unknown>;
    lines.push(`config: ${Object.entries(cfg).filter(([, v]) => v !== null && !(typeof v === 'object' && Object.keys(v as object).length === 0)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  }
  if (doc['tie']) lines.push(`tie: ${(doc['tie'] as TieStatus).summary}`);
  if (typeof doc['parameters'] === 'number') lines.push(`parameters: ${doc['parameters'].toLocaleString('en-US')}`);
  const tensors = doc['tensors'] as TensorRow[];
  const total = tensors.reduce((n, t) => n + t.bytes, 0);
  lines.push(`tensors: ${tensors.length} (${formatBytes(total)})`);
  const w = Math.min(60, Math.max(...tensors.map((t) => t.name.length), 4));
  for (const t of tensors) {
    lines.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]${t.role ? `  ${t.role}` : ''}`);
  }
  return terminalLines(lines);
}
