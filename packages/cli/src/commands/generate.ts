import { UsageError } from '@lorafuse/core';
import { choice, flag, integerOption, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { OpenFiles } from '../fs/inputs.js';
import { openForwardDevice, type ForwardDevice } from '../forward/forward-device.js';
import { forwardDevice, openForwardModel, promptIds } from '../forward/model-inputs.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse generate <dir> [--adapter <adapter-dir>] (--prompt "text" | --ids 1,2,3) [options]

Greedy decoding with GPT-2's forward pass (a key/value cache, one token at a time): the most likely
token, every step. <dir> is read as transformers loads it; with --adapter, <dir> is the base and the
adapter is applied unmerged. Stops after --tokens tokens, at eos_token_id (unless --ignore-eos), or
at n_positions.

Options:
  --adapter <dir>         a PEFT adapter directory to apply unmerged on top of <dir>
  --prompt <text>         text, encoded with the tokenizer.json of the adapter or <dir>
  --ids <list>            token ids, comma-separated (no tokenizer needed)
  --tokens <n>            tokens to generate (default 20)
  --ignore-eos            keep going after eos_token_id
  --transformers <v>      v5 (default) or v4: whose loading rules to apply
  --device <d>            cpu (default: the CPU reference), webgpu (the WGSL kernels in headless
                          Chromium) or dawn (the same kernels on Dawn in Node)
  --json                  print {"ids", "generated", "text"} on stdout
  -h, --help              show this help

Exit codes: 0 ok, 2 usage or input error.
`;

export const generateCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('generate', argv, {
      adapter: { type: 'string' },
      ids: { type: 'string' },
      prompt: { type: 'string' },
      tokens: { type: 'string' },
      'ignore-eos': { type: 'boolean' },
      transformers: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (args.positionals.length !== 1) throw new UsageError('BAD_ARGUMENTS', 'lorafuse generate: expected one <dir>', { hint: 'Run `lorafuse generate --help`.' });
    const deviceKind = forwardDevice('generate', stringOption(args, 'device'));
    const version = choice('generate', 'transformers', stringOption(args, 'transformers'), ['v5', 'v4'] as const, 'v5');
    const tokens = integerOption('generate', args, 'tokens', 20, 0);
    const files = new OpenFiles();
    let device: ForwardDevice | undefined;
    try {
      const loaded = await openForwardModel(args.positionals[0]!, stringOption(args, 'adapter'), files, version);
      if (loaded.model.config.head !== 'lm_head') {
        throw new UsageError('NOT_A_LANGUAGE_MODEL', `lorafuse generate: ${loaded.model.description} is a ${loaded.model.config.architecture}, which predicts labels, not tokens`, { subject: 'architectures', hint: 'Use `lorafuse logits` for a classifier.' });
      }
      const { ids, codec } = await promptIds('generate', loaded, stringOption(args, 'ids'), stringOption(args, 'prompt'));
      const stop = flag(args, 'ignore-eos') ? null : loaded.model.config.eosTokenId;
      device = await openForwardDevice(deviceKind);
      const generated = await device.runner(loaded.model).greedy(ids!, tokens, stop);
      const text = codec ? codec.decode([...ids!, ...generated]) : undefined;
      if (flag(args, 'json')) {
        io.stdout.write(terminalJson({ ids, generated, ...(text === undefined ? {} : { text }), model: loaded.model.description, device: device.description, notes: loaded.notes }));
        return 0;
      }
      const lines = [...loaded.notes.map((n) => `note: ${n}`)];
      lines.push(text !== undefined ? text : `${ids!.join(',')} → ${generated.join(',')}`);
      io.stdout.write(terminalLines(lines));
      return 0;
    } finally {
      await device?.close();
      await files.closeAll();
    }
  },
};
