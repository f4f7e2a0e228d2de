/**
 * Reading the tensor table of an input weights file on disk: core's `readWeightsHeader` (either
 * format, lorafuse's tensor cap) over the run's open files.
 */
import { readWeightsHeader, type SafetensorsHeader } from '@lorafuse/core';
import type { OpenFiles } from './open-files.js';

/** Opens `path` through `files` and reads its tensor table; refuses a file over the tensor cap. */
export async function readInputHeader(files: OpenFiles, path: string): Promise<SafetensorsHeader> {
  return readWeightsHeader(await files.open(path), path);
}
