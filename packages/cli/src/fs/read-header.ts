/**
 * Reading a safetensors header of an input file, with lorafuse's own limit on the number of tensors.
 * Every tensor costs bookkeeping in planning, writing and the proof; real GPT-2 checkpoints hold a few
 * hundred (gpt2-xl: under 600), so a file with more than {@link MAX_TENSORS_PER_FILE} is refused
 * rather than processed for minutes.
 */
import { InputError, readSafetensorsHeader, type SafetensorsHeader } from '@lorafuse/core';
import type { OpenFiles } from './open-files.js';

/** The most tensors lorafuse reads from one safetensors file. */
export const MAX_TENSORS_PER_FILE = 100_000;

/** Opens `path` through `files` and reads its header; refuses a file over the tensor cap. */
export async function readInputHeader(files: OpenFiles, path: string): Promise<SafetensorsHeader> {
  const header = await readSafetensorsHeader(await files.open(path));
  if (header.tensors.length > MAX_TENSORS_PER_FILE) {
    throw new InputError('TOO_MANY_TENSORS', `${path} holds ${header.tensors.length} tensors; lorafuse reads at most ${MAX_TENSORS_PER_FILE.toLocaleString('en-US')} per file`, {
      subject: path,
      hint: 'A GPT-2 checkpoint or adapter has a few hundred tensors; check that this is the right file.',
    });
  }
  return header;
}
