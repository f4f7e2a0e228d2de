/**
 * `.bin` files written by real torch, transformers and PEFT (packages/core/test/data/torch-bin, made by
 * scripts/interop/peft_cases.py --torch-bin-test-data): the `.bin` adapter merges to exactly the bytes its
 * safetensors twin gives, so does the `.bin` base (whose lm_head.weight is a view of wte's storage), and
 * PEFT's own merge verifies against the `.bin` inputs.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, runLorafuse, tempDir } from './helpers.js';

const CASE = fileURLToPath(new URL('../../core/test/data/torch-bin/bin-adapter-and-base/', import.meta.url));
const dir = (name: string) => join(CASE, name);

let work: string;
let reference: Buffer;
beforeAll(async () => {
  work = await tempDir();
  const out = join(work, 'safetensors');
  const r = await runLorafuse(['merge', dir('base-safetensors'), dir('adapter-safetensors'), '--out', out, '--device', 'cpu']);
  expect(r.code, r.stderr).toBe(0);
  reference = await readFile(join(out, 'model.safetensors'));
}, 60_000);
afterAll(async () => {
  await removeDir(work);
});

describe('real torch.save files', () => {
  for (const [baseName, adapterName] of [['base-safetensors', 'adapter'], ['base', 'adapter-safetensors'], ['base', 'adapter']] as const) {
    it(`${baseName} + ${adapterName} merges to the bytes of the safetensors twins`, async () => {
      const out = join(work, `${baseName}+${adapterName}`);
      const r = await runLorafuse(['merge', dir(baseName), dir(adapterName), '--out', out, '--device', 'cpu', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).findings).toEqual([]);
      expect(await readFile(join(out, 'model.safetensors'))).toEqual(reference);
    });
  }

  it("PEFT's merge of the .bin inputs verifies against them", async () => {
    const v = await runLorafuse(['verify', dir('expected'), '--base', dir('base'), '--adapter', dir('adapter'), '--device', 'cpu']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
