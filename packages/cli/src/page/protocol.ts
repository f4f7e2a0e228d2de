/** Control messages between the CLI and its runner page: URLs, shapes and scales, never tensor bytes. */
import type { FloatCodecDtype } from '@lorafuse/core';

/** A tensor the page downloads from the runner server. */
export interface PageTensorRef {
  readonly url: string;
  readonly dtype: FloatCodecDtype;
}

/** `mergeTensor`: W (row-major `rows` x `cols`) += Σ scale · delta, uploaded to `uploadUrl` in `outDtype`. */
export interface PageMergeRequest {
  readonly name: string;
  readonly w: PageTensorRef & { readonly rows: number; readonly cols: number };
  readonly deltas: ReadonlyArray<{
    readonly modulePath: string;
    readonly a: PageTensorRef;
    readonly b: PageTensorRef;
    readonly rank: number;
    readonly scale: number;
    readonly orientation: 'linear' | 'transposed';
  }>;
  readonly outDtype: FloatCodecDtype;
  readonly uploadUrl: string;
}

export interface PageMergeResult {
  readonly nonFinite: number;
  readonly bytes: number;
}
