/**
 * Reading the tensor table of an input weights file: a safetensors header, or the state dict of a
 * PyTorch `.bin` (`torch.save`'s zip format, read without running its pickle). Both give the same
 * `SafetensorsHeader` shape, whose tensors are byte ranges of the file, so every later stage reads
 * either kind the same way. lorafuse's own limit on the number of tensors applies to both: every
 * tensor costs bookkeeping in planning, writing and the proof; real GPT-2 checkpoints hold a few
 * hundred (gpt2-xl: under 600), so a file with more than {@link MAX_TENSORS_PER_FILE} is refused
 * rather than processed for minutes.
 */
import { InputError, readSafetensorsHeader, readTorchCheckpoint, type SafetensorsHeader } from '@lorafuse/core';
import type { OpenFiles } from './open-files.js';

/** The most tensors lorafuse reads from one weights file. */
export const MAX_TENSORS_PER_FILE = 100_000;

/** File name endings `torch.save` files carry; they are read as torch zip archives, never unpickled. */
const TORCH_ENDINGS = ['.bin', '.pt', '.pth'];

/** Whether `path` names a PyTorch file (`.bin`, `.pt`, `.pth`) rather than a safetensors one. */
export function isTorchWeightsFile(path: string): boolean {
  return TORCH_ENDINGS.some((e) => path.endsWith(e));
}

/** Opens `path` through `files` and reads its tensor table; refuses a file over the tensor cap. */
export async function readInputHeader(files: OpenFiles, path: string): Promise<SafetensorsHeader> {
  const source = await files.open(path);
  const header = isTorchWeightsFile(path) ? await readTorchCheckpoint(source) : await readSafetensorsHeader(source);
  if (header.tensors.length > MAX_TENSORS_PER_FILE) {
    throw new InputError('TOO_MANY_TENSORS', `${path} holds ${header.tensors.length} tensors; lorafuse reads at most ${MAX_TENSORS_PER_FILE.toLocaleString('en-US')} per file`, {
      subject: path,
      hint: 'A GPT-2 checkpoint or adapter has a few hundred tensors; check that this is the right file.',
    });
  }
  return header;
}
