import { createHash, type Hash } from 'node:crypto';
import type { ByteSource } from '@lorafuse/core';
import { streamRange } from '../fs/stream-range.js';

/** SHA-256 of bytes, hex. */
export function digestBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of a byte range, streamed in bounded chunks. */
export async function digestRange(source: ByteSource, offset: number, length: number): Promise<string> {
  const hash: Hash = createHash('sha256');
  await streamRange(source, offset, length, async (chunk) => {
    hash.update(chunk);
  });
  return hash.digest('hex');
}
