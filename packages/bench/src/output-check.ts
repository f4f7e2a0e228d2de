/**
 * The check every merge contender's output passes before its time counts: a model.safetensors with
 * exactly the base's tensors (names, dtypes, shapes). File sizes alone do not do: writers order and
 * pad their headers differently, so equal tensors can make files of different lengths.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { parseSafetensorsHeader, type SafetensorsHeader } from '@lorafuse/core';

/** Reads and validates the header of the safetensors file at `path`. */
export async function readHeaderOf(path: string): Promise<SafetensorsHeader> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const prefix = new Uint8Array(8);
    await handle.read(prefix, 0, 8, 0);
    const n = Number(new DataView(prefix.buffer).getBigUint64(0, true));
    if (n > size - 8) throw new Error(`${path}: header length ${n} is past the end of the ${size}-byte file`);
    const headerBytes = new Uint8Array(n);
    await handle.read(headerBytes, 0, n, 8);
    return parseSafetensorsHeader(prefix, headerBytes, size, path);
  } finally {
    await handle.close();
  }
}

/** Why `path` is not a safetensors file holding the tensors of `expected`, or null when it is. */
export async function outputMismatch(path: string, expected: SafetensorsHeader): Promise<string | null> {
  if (!existsSync(path)) return 'no model.safetensors written';
  let actual: SafetensorsHeader;
  try {
    actual = await readHeaderOf(path);
  } catch (e) {
    return `model.safetensors is not valid: ${(e as Error).message.slice(0, 200)}`;
  }
  const missing = expected.tensors.filter((t) => !actual.byName.has(t.name)).map((t) => t.name);
  const extra = actual.tensors.filter((t) => !expected.byName.has(t.name)).map((t) => t.name);
  if (missing.length > 0 || extra.length > 0) return `model.safetensors has other tensors (missing: ${missing.slice(0, 3).join(', ') || 'none'}; extra: ${extra.slice(0, 3).join(', ') || 'none'})`;
  for (const t of expected.tensors) {
    const a = actual.byName.get(t.name)!;
    if (a.dtype !== t.dtype || a.shape.join(',') !== t.shape.join(',')) return `model.safetensors: ${t.name} is ${a.dtype} [${a.shape.join(', ')}], the base has ${t.dtype} [${t.shape.join(', ')}]`;
  }
  return null;
}
