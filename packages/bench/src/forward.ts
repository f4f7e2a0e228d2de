/**
 * The forward-pass benchmark: a GPT-2-124M-shaped checkpoint (generated), a 128-token prefill and
 * greedy decoding, on lorafuse's devices (the WGSL kernels on Dawn; the CPU reference) and on PyTorch
 * (transformers' GPT2LMHeadModel in float32, 2 threads) in the same run. Loading is timed apart.
 */
import { spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpointModel, OpenFiles, openForwardDevice, type ForwardDeviceKind } from '@lorafuse/cli/forward';
import { GPT2_124M, writeGpt2Base } from './fixture.js';
import type { PeftPeer } from './python.js';
import { ratio, summarize, type Summary } from './stats.js';

/** Tokens of the prefill, and generated tokens of the decode figure. */
export const PREFILL_TOKENS = 128;
export const DECODE_TOKENS = 32;
const DECODE_PROMPT = 8;

/** One contender's figures. */
export interface ForwardFigures {
  readonly id: string;
  readonly label: string;
  readonly skipped?: string;
  readonly loadS?: number;
  readonly prefillS?: Summary;
  /** Generated tokens per second after an 8-token prompt (its prefill included). */
  readonly decodeTokensPerS?: number;
}

/** What the section measured. */
export interface ForwardResult {
  readonly shape: string;
  readonly prefillTokens: number;
  readonly decodeTokens: number;
  readonly figures: ForwardFigures[];
  /** Prefill time / PyTorch's, by contender id. */
  readonly prefillVsTorch: Record<string, number>;
  readonly notes: string[];
}

const TORCH_FORWARD_SCRIPT = String.raw`
import json, sys, time, torch
from transformers import GPT2LMHeadModel
torch.set_num_threads(2)
d, n, runs, decode, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
m = GPT2LMHeadModel.from_pretrained(d, dtype=torch.float32).eval()
load = time.perf_counter() - t0
ids = torch.tensor([[(i * 2654435761) % m.config.vocab_size for i in range(1, n + 1)]])
times = []
with torch.no_grad():
    m(ids[:, :8])
    for _ in range(runs):
        t0 = time.perf_counter(); m(ids); times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = m.generate(ids[:, :prompt], max_new_tokens=decode, min_new_tokens=decode, do_sample=False, pad_token_id=0)
    dec = time.perf_counter() - t0
print(json.dumps({"load": load, "prefill": times, "decode_tps": decode / dec, "torch": torch.__version__}))
`;

function ids(n: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => Number((BigInt(i + 1) * 2654435761n) % BigInt(vocab)));
}

async function benchDevice(kind: ForwardDeviceKind, dir: string, runs: number, log: (s: string) => void): Promise<ForwardFigures> {
  const label = kind === 'dawn' ? 'lorafuse, WGSL kernels on Dawn' : kind === 'webgpu' ? 'lorafuse, WGSL kernels in Chromium' : 'lorafuse, CPU reference (TypeScript)';
  const files = new OpenFiles();
  let device;
  try {
    const t0 = performance.now();
    const loaded = await loadCheckpointModel(dir, files, 'v5');
    device = await openForwardDevice(kind);
    const runner = device.runner(loaded.model);
    const loadS = (performance.now() - t0) / 1000;
    const prompt = ids(PREFILL_TOKENS, loaded.model.config.vocabSize);
    await runner.logits(prompt.slice(0, 8));
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      await runner.logits(prompt);
      times.push((performance.now() - s) / 1000);
    }
    const s = performance.now();
    const generated = await runner.greedy(prompt.slice(0, DECODE_PROMPT), DECODE_TOKENS);
    const decodeTokensPerS = generated.length / ((performance.now() - s) / 1000);
    log(`forward: ${label}: load ${loadS.toFixed(1)} s, prefill ${times.map((t) => t.toFixed(2)).join('/')} s, decode ${decodeTokensPerS.toFixed(1)} tokens/s (${device.description})`);
    return { id: `lorafuse-${kind}`, label: `${label} (${device.description})`, loadS, prefillS: summarize(times, 's'), decodeTokensPerS };
  } catch (e) {
    log(`forward: ${label}: ${(e as Error).message}`);
    return { id: `lorafuse-${kind}`, label, skipped: (e as Error).message.split('\n')[0]! };
  } finally {
    await device?.close();
    await files.closeAll();
  }
}

/** Runs the forward section. */
export async function benchForward(options: { workDir: string; peft: PeftPeer; quick: boolean; log: (s: string) => void }): Promise<ForwardResult> {
  const { workDir, log } = options;
  const dir = join(workDir, 'forward');
  const notes: string[] = ['Load is reading and decoding the checkpoint plus starting the device and uploading the weights (in Chromium: over the local server).'];
  const figures: ForwardFigures[] = [];
  try {
    log('forward: writing the GPT-2-124M-shaped checkpoint ...');
    const { baseDir } = await writeGpt2Base(dir, 'gpt2', GPT2_124M, 124);
    figures.push(await benchDevice('dawn', baseDir, 1, log));
    figures.push(await benchDevice('webgpu', baseDir, 1, log));
    figures.push(await benchDevice('cpu', baseDir, 1, log));
    if (options.peft.available) {
      const script = join(workDir, 'torch_forward.py');
      await writeFile(script, TORCH_FORWARD_SCRIPT);
      const r = spawnSync(options.peft.python, [script, baseDir, String(PREFILL_TOKENS), options.quick ? '3' : '5', String(DECODE_TOKENS), String(DECODE_PROMPT)], { encoding: 'utf8', timeout: 900_000, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      if (r.status === 0) {
        const t = JSON.parse(r.stdout.trim().split('\n').pop()!) as { load: number; prefill: number[]; decode_tps: number; torch: string };
        figures.push({ id: 'pytorch', label: `PyTorch ${t.torch} + transformers GPT2LMHeadModel, float32, 2 threads`, loadS: t.load, prefillS: summarize(t.prefill, 's'), decodeTokensPerS: t.decode_tps });
        log(`forward: PyTorch: prefill ${t.prefill.map((x) => x.toFixed(2)).join('/')} s, decode ${t.decode_tps.toFixed(1)} tokens/s`);
      } else {
        figures.push({ id: 'pytorch', label: 'PyTorch', skipped: `the script failed: ${r.stderr.slice(-300)}` });
      }
    } else {
      figures.push({ id: 'pytorch', label: 'PyTorch', skipped: options.peft.status });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const torch = figures.find((f) => f.id === 'pytorch')?.prefillS?.median;
  const prefillVsTorch: Record<string, number> = {};
  for (const f of figures) if (f.id !== 'pytorch' && f.prefillS && torch) prefillVsTorch[f.id] = ratio(f.prefillS.median, torch);
  return { shape: 'GPT-2-124M (n_embd 768, 12 layers, vocab 50257), F32', prefillTokens: PREFILL_TOKENS, decodeTokens: DECODE_TOKENS, figures, prefillVsTorch, notes };
}
