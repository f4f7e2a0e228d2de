/** bench/output-check: a merge's output counts only when it holds the base's tensors. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGpt2Checkpoint, safetensorsBytes } from '@lorafuse/core/testing';
import { outputMismatch, readHeaderOf } from './output-check.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorafuse-bench-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('outputMismatch', () => {
  it('accepts the same tensors written in another order, and names what differs otherwise', async () => {
    const base = await makeGpt2Checkpoint();
    await writeFile(join(dir, 'base.safetensors'), base.files['model.safetensors']!);
    const expected = await readHeaderOf(join(dir, 'base.safetensors'));
    await writeFile(join(dir, 'reordered.safetensors'), await safetensorsBytes([...base.tensors].reverse()));
    expect(await outputMismatch(join(dir, 'reordered.safetensors'), expected)).toBeNull();

    await writeFile(join(dir, 'short.safetensors'), await safetensorsBytes(base.tensors.slice(1)));
    expect(await outputMismatch(join(dir, 'short.safetensors'), expected)).toContain(`missing: ${base.tensors[0]!.name}`);

    const [first, ...rest] = base.tensors;
    await writeFile(join(dir, 'f16.safetensors'), await safetensorsBytes([{ ...first!, dtype: 'F16' }, ...rest]));
    expect(await outputMismatch(join(dir, 'f16.safetensors'), expected)).toContain(`${first!.name} is F16`);

    await writeFile(join(dir, 'junk.safetensors'), new Uint8Array(16).fill(0xff));
    expect(await outputMismatch(join(dir, 'junk.safetensors'), expected)).toContain('not valid');
    expect(await outputMismatch(join(dir, 'absent.safetensors'), expected)).toBe('no model.safetensors written');
  });
});
