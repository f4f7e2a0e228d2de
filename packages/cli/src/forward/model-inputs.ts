/**
 * What `logits`, `generate` and `verify --behaviour` share: which model to run (a checkpoint, or a
 * base plus an adapter applied unmerged), on which device, and the token ids to feed it.
 */
import { UsageError, type TransformersVersion } from '@lorafuse/core';
import type { OpenFiles } from '../fs/inputs.js';
import type { ForwardDeviceKind } from './forward-device.js';
import { loadCheckpointModel, loadUnmergedModel, type LoadedModel } from './load-models.js';
import { requireTokenizer, findTokenizer, type TextCodec } from './tokenizer.js';

/** Checks `--device`: the CPU reference, or the WGSL kernels in Chromium (webgpu) or on Dawn. */
export function forwardDevice(command: string, value: string | undefined): ForwardDeviceKind {
  if (value === undefined || value === 'cpu') return 'cpu';
  if (value === 'dawn' || value === 'webgpu') return value;
  throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --device must be cpu, webgpu or dawn, got "${value}"`, { subject: '--device', hint: 'cpu: the TypeScript reference; webgpu: the WGSL kernels in headless Chromium; dawn: the same kernels on Dawn in Node.' });
}

/** Opens `dir` as transformers loads it, or `dir` + `adapter` unmerged. */
export function openForwardModel(dir: string, adapter: string | undefined, files: OpenFiles, version: TransformersVersion): Promise<LoadedModel> {
  return adapter === undefined ? loadCheckpointModel(dir, files, version) : loadUnmergedModel(dir, adapter, files, version);
}

/** Parses `--ids 1,2,3`. */
export function parseIds(command: string, text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((p, i) => p === '' || !Number.isInteger(ids[i]) || ids[i]! < 0);
  if (bad >= 0) {
    const item = parts.length === 1 ? `"${text}"` : `"${parts[bad]}" (item ${bad + 1} of "${text}")`;
    throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --ids must be comma-separated non-negative integers, got ${item}`, { subject: '--ids', hint: 'Example: --ids 464,3290,318' });
  }
  return ids;
}

/** The prompt as ids, from exactly one of `--ids` and `--prompt`; with the tokenizer when there is one. */
export async function promptIds(command: string, model: LoadedModel, ids: string | undefined, prompt: string | undefined, required = true): Promise<{ ids: number[] | undefined; codec: TextCodec | undefined }> {
  if (ids !== undefined && prompt !== undefined) throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: give --ids or --prompt, not both`, { subject: '--ids' });
  if (ids === undefined && prompt === undefined) {
    if (required) throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --ids <1,2,3> or --prompt <text> is required`, { hint: `Run \`lorafuse ${command} --help\`.` });
    return { ids: undefined, codec: await findTokenizer(model.tokenizerDirs) };
  }
  if (prompt !== undefined) {
    const codec = await requireTokenizer(model.tokenizerDirs);
    const encoded = codec.encode(prompt);
    if (encoded.length === 0) throw new UsageError('BAD_ARGUMENTS', `lorafuse ${command}: --prompt encodes to no tokens`, { subject: '--prompt' });
    return { ids: encoded, codec };
  }
  return { ids: parseIds(command, ids!), codec: await findTokenizer(model.tokenizerDirs) };
}
