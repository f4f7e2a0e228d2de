import { pooledPosition, UsageError } from '@lorafuse/core';
import { choice, flag, integerOption, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { OpenFiles } from '../fs/inputs.js';
import { openForwardDevice, type ForwardDevice } from '../forward/forward-device.js';
import { forwardDevice, openForwardModel, promptIds } from '../forward/model-inputs.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse logits <dir> [--adapter <adapter-dir>] (--ids 1,2,3 | --prompt "text") [options]

Runs GPT-2's forward pass and prints the logits. <dir> is read as transformers loads it (ties
applied, a discarded stored lm_head discarded); with --adapter, <dir> is the base and the adapter is
applied unmerged, as PEFT's model computes it before any merge. A GPT2ForSequenceClassification
gives one row of num_labels logits, at the last token that is not pad_token_id.

Options:
  --adapter <dir>         a PEFT adapter directory to apply unmerged on top of <dir>
  --ids <list>            token ids, comma-separated
  --prompt <text>         text, encoded with the tokenizer.json of the adapter or <dir>
  --transformers <v>      v5 (default) or v4: whose loading rules to apply
  --top <n>               logits shown per position in the human output (default 5; --json has all)
  --device <d>            cpu (default: the CPU reference), webgpu (the WGSL kernels in headless
                          Chromium) or dawn (the same kernels on Dawn in Node)
  --json                  print {"ids": [...], "logits": [[...], ...]} on stdout
  -h, --help              show this help

Exit codes: 0 ok, 2 usage or input error.
`;

export const logitsCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('logits', argv, {
      adapter: { type: 'string' },
      ids: { type: 'string' },
      prompt: { type: 'string' },
      transformers: { type: 'string' },
      top: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (args.positionals.length !== 1) throw new UsageError('BAD_ARGUMENTS', 'lorafuse logits: expected one <dir>', { hint: 'Run `lorafuse logits --help`.' });
    const deviceKind = forwardDevice('logits', stringOption(args, 'device'));
    const version = choice('logits', 'transformers', stringOption(args, 'transformers'), ['v5', 'v4'] as const, 'v5');
    const top = integerOption('logits', args, 'top', 5, 1);
    const files = new OpenFiles();
    let device: ForwardDevice | undefined;
    try {
      const loaded = await openForwardModel(args.positionals[0]!, stringOption(args, 'adapter'), files, version);
      const { ids, codec } = await promptIds('logits', loaded, stringOption(args, 'ids'), stringOption(args, 'prompt'));
      const model = loaded.model;
      const width = model.head.outDim;
      device = await openForwardDevice(deviceKind);
      const all = await device.runner(model).logits(ids!);
      const rows: number[][] = [];
      const pooled = model.config.head === 'score';
      const positions = pooled ? [pooledPosition(ids!, model.config.padTokenId)] : ids!.map((_, i) => i);
      for (const p of positions) rows.push(Array.from(all.subarray(p * width, (p + 1) * width)));
      if (flag(args, 'json')) {
        io.stdout.write(terminalJson({ ids, ...(pooled ? { pooledPosition: positions[0] } : {}), logits: pooled ? rows[0] : rows, model: model.description, device: device.description, notes: loaded.notes }));
        return 0;
      }
      const lines = [`${model.description}: ${ids!.length} tokens, ${pooled ? `${width} labels at position ${positions[0]}` : `${width} logits per position`} on ${device.description}`];
      for (const n of loaded.notes) lines.push(`note: ${n}`);
      rows.forEach((row, r) => {
        const pos = positions[r]!;
        const best = row.map((v, j) => [j, v] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, top);
        const token = codec && !pooled ? ` ${JSON.stringify(codec.decode([ids![pos]!]))}` : '';
        lines.push(`${String(pos).padStart(4)}  id ${ids![pos]}${token}: ${best.map(([j, v]) => `${pooled ? `label ${j}` : j}=${v.toFixed(4)}`).join('  ')}`);
      });
      io.stdout.write(terminalLines(lines));
      return 0;
    } finally {
      await device?.close();
      await files.closeAll();
    }
  },
};
