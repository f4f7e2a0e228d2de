/** Control messages between the CLI and its runner page: URLs, shapes and scales, never tensor bytes. */
import type { FloatCodecDtype } from '@lorafuse/core';

/** A tensor the page downloads from the runner server. */
export interface PageTensorRef {
  readonly url: string;
  readonly dtype: FloatCodecDtype;
}

/**
 * `loraDelta`: ΔW = Σ scale · delta (row-major `rows` x `cols`, deltas applied in order to a zero
 * matrix by the merge kernel), uploaded to `uploadUrl` as f32. W itself never enters the page: Node
 * adds ΔW to it while it writes the output, which halves the bytes crossing the loopback.
 */
export interface PageDeltaRequest {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly deltas: ReadonlyArray<{
    readonly modulePath: string;
    readonly a: PageTensorRef;
    readonly b: PageTensorRef;
    readonly rank: number;
    readonly scale: number;
    readonly orientation: 'linear' | 'transposed';
  }>;
  readonly uploadUrl: string;
}

export interface PageDeltaResult {
  /** Bytes uploaded (rows · cols · 4). */
  readonly bytes: number;
}
