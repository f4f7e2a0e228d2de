import { describe, expect, it } from 'vitest';
import { layoutSafetensors, readSafetensorsHeader, SafetensorsPositionalWriter } from '@lorafuse/core';
import { downloadOutput } from './download-output.js';
import { fileSource } from './picked-files.js';

describe('downloadOutput (the download assembled from Blob parts)', () => {
  it('assembles positional writes in any order into the file, config.json beside it, and reads back through the picked-file source', async () => {
    const layout = layoutSafetensors([
      { name: 'a', dtype: 'F32', shape: [2] },
      { name: 'b', dtype: 'F32', shape: [3] },
    ]);
    const output = downloadOutput();
    const weights = await output.openWeights(layout.totalSize, []);
    const writer = new SafetensorsPositionalWriter(weights, layout);
    await writer.start();
    const a = new Uint8Array(8).fill(1);
    const b = new Uint8Array(12).fill(2);
    // The second tensor first, in two chunks: the parts are put in file order at close.
    await writer.writeTensorChunk('b', b.subarray(0, 5));
    await writer.writeTensorChunk('b', b.subarray(5));
    await writer.writeTensorChunk('a', a);
    await writer.finish();
    const model = await weights.close();
    expect(model.size).toBe(layout.totalSize);
    const source = fileSource('merged/model.safetensors', model);
    const header = await readSafetensorsHeader(source);
    expect(header.tensors.map((t) => t.name)).toEqual(['a', 'b']);
    const bRef = header.byName.get('b')!;
    expect(await source.read(bRef.fileOffset, bRef.byteLength)).toEqual(b);
    const files = await output.commit(new TextEncoder().encode('{}\n'), []);
    expect(files.directory).toBeUndefined();
    expect(await files.config.text()).toBe('{}\n');
    expect(files.model).toBe(model);
  });

  it('takes a picked file\'s slice as a part as it is: the download holds the file\'s bytes there', async () => {
    const picked = fileSource('base/model.safetensors', new Blob([Uint8Array.from({ length: 64 }, (_, i) => i)]));
    const weights = await downloadOutput().openWeights(12, []);
    await weights.writeBlobAt(4, picked.slice(10, 8));
    await weights.writeAt(0, new Uint8Array([255, 254, 253, 252]));
    const model = await weights.close();
    expect([...new Uint8Array(await model.arrayBuffer())]).toEqual([255, 254, 253, 252, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(() => picked.slice(60, 8)).toThrow(/base\/model\.safetensors/);
  });

  it('refuses to close weights with a gap, an overlap or missing bytes, and to commit before the weights are closed', async () => {
    const gap = await downloadOutput().openWeights(8, []);
    await gap.writeAt(0, new Uint8Array(2));
    await gap.writeAt(4, new Uint8Array(4));
    await expect(gap.close()).rejects.toThrow('leave a gap at byte 2');
    const overlap = await downloadOutput().openWeights(4, []);
    await overlap.writeAt(0, new Uint8Array(3));
    await overlap.writeAt(2, new Uint8Array(2));
    await expect(overlap.close()).rejects.toThrow('overlap at byte 2');
    const short = await downloadOutput().openWeights(8, []);
    await short.writeAt(0, new Uint8Array(4));
    await expect(short.close()).rejects.toThrow('4 of the weights\' 8 bytes were written');
    await expect(downloadOutput().commit(new Uint8Array(1), [])).rejects.toThrow('before the weights were closed');
  });
});
