/**
 * The WGSL forward pass on Dawn in Node (SwiftShader where there is no GPU): the kernels against
 * their CPU twins, and the GPT-2 runner against the CPU runner with LoRA terms on Conv1D, the head
 * and the embedding, through the key/value cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGpt2Model, compareLogits, cpuLogitsRunner, forwardConfigOf, type LoraTerm, type ParamValues } from '@lorafuse/core';
import { ForwardKernels } from '@lorafuse/kernels';
import { runForwardChecks, SeededRandom } from '@lorafuse/kernels/testing';
import { startDawnDevice, type DawnDevice } from '../devices/index.js';
import { gpuLogitsRunner } from './gpu-runner.js';

let dawn: DawnDevice;
beforeAll(async () => {
  dawn = await startDawnDevice(process.env, '');
}, 120_000);
afterAll(() => dawn?.destroy());

const E = 12;
const V = 70;
const P = 80;

function model(withLora: boolean) {
  const rng = new SeededRandom(4);
  const params = new Map<string, ParamValues>();
  const add = (name: string, shape: number[], around = 0) => params.set(name, { shape, values: rng.normalArray(shape.reduce((a, b) => a * b, 1), 0.4).map((v) => v + around) });
  add('transformer.wte.weight', [V, E]);
  add('transformer.wpe.weight', [P, E]);
  for (let l = 0; l < 2; l++) {
    const p = `transformer.h.${l}`;
    add(`${p}.ln_1.weight`, [E], 1);
    add(`${p}.ln_1.bias`, [E]);
    add(`${p}.ln_2.weight`, [E], 1);
    add(`${p}.ln_2.bias`, [E]);
    add(`${p}.attn.c_attn.weight`, [E, 3 * E]);
    add(`${p}.attn.c_attn.bias`, [3 * E]);
    add(`${p}.attn.c_proj.weight`, [E, E]);
    add(`${p}.attn.c_proj.bias`, [E]);
    add(`${p}.mlp.c_fc.weight`, [E, 20]);
    add(`${p}.mlp.c_fc.bias`, [20]);
    add(`${p}.mlp.c_proj.weight`, [20, E]);
    add(`${p}.mlp.c_proj.bias`, [E]);
  }
  add('transformer.ln_f.weight', [E], 1);
  add('transformer.ln_f.bias', [E]);
  add('lm_head.weight', [V, E]);
  const term = (inDim: number, outDim: number, rank: number, scale: number, module: string): LoraTerm => ({ a: rng.normalArray(rank * inDim, 0.5), b: rng.normalArray(outDim * rank, 0.5), rank, scale, module });
  const lora = new Map<string, LoraTerm[]>(
    withLora
      ? [
          ['transformer.h.1.attn.c_attn', [term(E, 3 * E, 3, 1.5, 'c_attn'), term(E, 3 * E, 1, -0.5, 'c_attn 2')]],
          ['transformer.h.0.mlp.c_proj', [term(20, E, 2, 2, 'c_proj')]],
          ['lm_head', [term(E, V, 4, 0.75, 'lm_head')]],
          ['transformer.wte', [term(V, E, 2, 1.25, 'wte')]],
        ]
      : [],
  );
  const config = forwardConfigOf({ n_embd: E, n_head: 3, n_layer: 2, n_positions: P, vocab_size: V, n_inner: 20, activation_function: 'gelu', scale_attn_by_inverse_layer_idx: true }, 'config.json');
  return buildGpt2Model({ config, params, lora, label: 'test' });
}

describe('forward pass on Dawn', () => {
  it('every forward kernel agrees with its CPU twin on awkward shapes (Dawn)', async () => {
    const results = await runForwardChecks(dawn.device);
    expect(results.length).toBeGreaterThan(40);
    expect(results.filter((r) => r.violations > 0).map((r) => `${r.name}: max |d| ${r.maxAbs}`)).toEqual([]);
  }, 120_000);

  it('the GPT-2 runner on Dawn gives the CPU runner\'s logits and greedy tokens, with and without LoRA terms', async () => {
    const kernels = ForwardKernels.prepare(dawn.device);
    for (const withLora of [false, true]) {
      const m = model(withLora);
      const gpu = gpuLogitsRunner(kernels, m);
      const cpu = cpuLogitsRunner(m);
      const ids = Array.from({ length: 67 }, (_, i) => (i * 13) % V);
      const cmp = compareLogits(ids, await gpu.logits(ids), await cpu.logits(ids), V, { atol: 1e-4, rtol: 1e-4 });
      expect(cmp.violations, `max |d| ${cmp.maxAbsDiff}`).toBe(0);
      expect(await gpu.greedy([5, 9, 2], 10)).toEqual(await cpu.greedy([5, 9, 2], 10));
      gpu.destroy();
    }
    kernels.destroy();
  }, 120_000);
});
