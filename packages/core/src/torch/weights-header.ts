/**
 * The tensor table of an input weights file, whichever of the two formats it is in: a safetensors
 * header, or the state dict of a `torch.save` file (read as a zip archive, never unpickled). Both
 * give the same `SafetensorsHeader` shape, so every later stage reads either kind the same way.
 * lorafuse's own limit on the number of tensors applies to both: every tensor costs bookkeeping in
 * planning, writing and the proof; real GPT-2 checkpoints hold a few hundred (gpt2-xl: under 600),
 * so a file with more than {@link MAX_TENSORS_PER_FILE} is refused rather than processed for minutes.
 * One rule for the CLI (files on disk) and the app (picked files).
 */
import { InputError } from '../errors.js';
import type { ByteSource } from '../io.js';
import { readSafetensorsHeader, type SafetensorsHeader } from '../safetensors/index.js';
import { readTorchCheckpoint } from './checkpoint.js';

/** The most tensors lorafuse reads from one weights file. */
export const MAX_TENSORS_PER_FILE = 100_000;

/** File name endings `torch.save` files carry. */
const TORCH_ENDINGS = ['.bin', '.pt', '.pth'];

/** Whether `name` names a PyTorch file (`.bin`, `.pt`, `.pth`) rather than a safetensors one. */
export function isTorchWeightsFile(name: string): boolean {
  return TORCH_ENDINGS.some((e) => name.endsWith(e));
}

/** Reads the tensor table of `source` (its format from `name`); refuses a file over the tensor cap, naming `source.label`. */
export async function readWeightsHeader(source: ByteSource, name: string): Promise<SafetensorsHeader> {
  const header = isTorchWeightsFile(name) ? await readTorchCheckpoint(source) : await readSafetensorsHeader(source);
  if (header.tensors.length > MAX_TENSORS_PER_FILE) {
    throw new InputError('TOO_MANY_TENSORS', `${source.label} holds ${header.tensors.length} tensors; lorafuse reads at most ${MAX_TENSORS_PER_FILE.toLocaleString('en-US')} per file`, {
      subject: source.label,
      hint: 'A GPT-2 checkpoint or adapter has a few hundred tensors; check that this is the right file.',
    });
  }
  return header;
}
