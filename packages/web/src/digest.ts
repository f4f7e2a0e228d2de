/** SHA-256 in the page (SubtleCrypto: a secure context, which 127.0.0.1 is). */
import type { ByteSource } from '@lorafuse/core';

/** SHA-256 of bytes, hex. */
export async function digestBytes(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** SHA-256 of a byte range, read in one slice (SubtleCrypto hashes one buffer: the proof asks for one tensor at a time). */
export async function digestRange(source: ByteSource, offset: number, length: number): Promise<string> {
  return digestBytes(await source.read(offset, length));
}
