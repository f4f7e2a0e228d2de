/** lorafuse's cap on tensors per file: over it, a clear error (exit 2) instead of minutes of bookkeeping. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGpt2Checkpoint, safetensorsBytes } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-cap-');
});
afterAll(async () => {
  await removeDir(work);
});

describe('tensor cap', () => {
  it('a file with more than 100,000 tensors is refused by name, by inspect and merge alike', async () => {
    const base = await makeGpt2Checkpoint({ seed: 1, nEmbd: 8, nLayer: 1, nHead: 2, vocabSize: 10, nPositions: 4 });
    const extra = Array.from({ length: 100_001 - base.tensors.length + 1 }, (_, i) => ({ name: `extra.t${i}`, shape: [1], values: new Float32Array([i]) }));
    const dir = await writeDir(join(work, 'base'), { 'config.json': JSON.stringify(base.config), 'model.safetensors': await safetensorsBytes([...base.tensors, ...extra]) });
    const r = await runLorafuse(['inspect', join(dir, 'model.safetensors'), '--json']);
    expect(r.code, r.stderr).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'TOO_MANY_TENSORS' });
    expect(JSON.parse(r.stdout).error.message).toMatch(/holds 100002 tensors; lorafuse reads at most 100,000 per file/);
    const m = await runLorafuse(['merge', dir, dir, '--out', join(work, 'out')]);
    expect(m.code).toBe(2);
  }, 60_000);
});
