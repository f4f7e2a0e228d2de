/**
 * Real adapters trained on gpt2 by other people (PEFT-written files, SEQ_CLS, r=8, alpha 32, targets
 * c_attn + c_proj, which matches both attn.c_proj and mlp.c_proj) merged into a generated checkpoint
 * of GPT-2-124M shapes. The real base weights are not available here; the deltas are what matter.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGpt2Checkpoint } from '@lorafuse/core/testing';
import { expectedMerge, readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir, type ReadBack } from './helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
function realAdapter(name: string): string {
  const inRepo = join(repo, 'packages/core/test/data/real-peft', name);
  return existsSync(inRepo) ? inRepo : join(repo, '../shared/real-peft', name);
}

let work: string;
let baseDir: string;
let base: ReadBack;
beforeAll(async () => {
  work = await tempDir('lorafuse-real-peft-');
  const ckpt = await makeGpt2Checkpoint({ seed: 124, nEmbd: 768, nLayer: 12, nHead: 12, vocabSize: 50257, nPositions: 1024 });
  baseDir = await writeDir(join(work, 'gpt2-124m-shaped'), ckpt.files);
  base = await readCheckpoint(join(baseDir, 'model.safetensors'));
}, 120_000);
afterAll(async () => {
  await removeDir(work);
});

describe.each([
  ['gpt2-classification-peft', 'cpu'],
  ['peft-implementation', 'webgpu'],
] as const)('real PEFT adapter %s (--device %s)', (name, device) => {
  it('merges every c_attn / attn.c_proj / mlp.c_proj delta right and adds the score head', async () => {
    const adapterDir = realAdapter(name);
    const out = join(work, `out-${name}`);
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', device, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // 12 layers x (c_attn, attn.c_proj, mlp.c_proj); q_proj/v_proj in target_modules match nothing.
    expect(report.tensors).toMatchObject({ merged: 36, added: 1 });
    expect(new Set(report.loraModules.map((m: { scale: number }) => m.scale))).toEqual(new Set([4]));
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['GPT2ForSequenceClassification']);
    expect(Object.keys(config.id2label)).toHaveLength(2);

    const merged = await readCheckpoint(join(out, 'model.safetensors'));
    const adapter = await readCheckpoint(join(adapterDir, 'adapter_model.safetensors'));
    expect(Buffer.from(merged.raw('score.weight')).equals(Buffer.from(adapter.raw('base_model.model.score.weight')))).toBe(true);
    for (const layer of [0, 5, 11]) {
      for (const leaf of ['attn.c_attn', 'attn.c_proj', 'mlp.c_proj']) {
        const module = `transformer.h.${layer}.${leaf}`;
        const w = `${module}.weight`;
        const a = adapter.f32(`base_model.model.${module}.lora_A.weight`);
        const b = adapter.f32(`base_model.model.${module}.lora_B.weight`);
        const expected = expectedMerge(base.f32(w), a, b, 8, base.header.byName.get(w)!.shape, true, 32 / 8);
        expect(worstViolation(merged.f32(w), expected, 1e-6, 1e-5), w).toBeLessThanOrEqual(0);
      }
      const untouched = `transformer.h.${layer}.mlp.c_fc.weight`;
      expect(Buffer.from(merged.raw(untouched)).equals(Buffer.from(base.raw(untouched)))).toBe(true);
    }
  }, 240_000);
});
