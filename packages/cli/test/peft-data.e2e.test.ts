/**
 * Files written by real PEFT (packages/core/test/data/peft, see its README): lorafuse's merge of each
 * adapter, read back, equals PEFT's own merge_and_unload (valid ground truth while the tied pair is
 * untouched) within f32 tolerance, on both devices; and `lorafuse verify` accepts PEFT's output.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation } from './helpers.js';

const data = fileURLToPath(new URL('../../core/test/data/peft/', import.meta.url));
const cases = readdirSync(data, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-peft-data-');
});
afterAll(async () => {
  await removeDir(work);
});

describe.each(cases)('PEFT-written case %s', (name) => {
  const dir = join(data, name);
  const meta = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { tied_embeddings_untouched?: boolean };

  it.each(['cpu', 'webgpu'] as const)('merges on %s to what PEFT merge_and_unload wrote', async (device) => {
    const out = join(work, `${name}-${device}`);
    const r = await runLorafuse(['merge', join(dir, 'base'), join(dir, 'adapter'), '--out', out, '--device', device]);
    expect(r.code, r.stderr).toBe(0);
    const got = await readCheckpoint(join(out, 'model.safetensors'));
    const want = await readCheckpoint(join(dir, 'expected', 'model.safetensors'));
    if (meta.tied_embeddings_untouched !== false) {
      expect(got.header.tensors.map((t) => t.name).sort()).toEqual(want.header.tensors.map((t) => t.name).sort());
    }
    for (const t of want.header.tensors) {
      expect(worstViolation(got.f32(t.name), want.f32(t.name), 1e-6, 1e-5), `${name}: ${t.name}`).toBeLessThanOrEqual(0);
    }
  });

  it("lorafuse verify accepts PEFT's own merged directory", async () => {
    const r = await runLorafuse(['verify', join(dir, 'expected'), '--base', join(dir, 'base'), '--adapter', join(dir, 'adapter')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
