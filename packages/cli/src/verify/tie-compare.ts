import { decodeToF32, type FloatCodecDtype, type TieComparison } from '@lorafuse/core';

/**
 * Compares the effective wte and lm_head (row-major [vocab, dim]) bitwise, and, when they differ,
 * counts differing rows and the largest absolute difference for the report.
 */
export function compareTiePair(wte: Uint8Array, wteDtype: string, head: Uint8Array, headDtype: string, dim: number): TieComparison {
  if (wteDtype === headDtype && wte.byteLength === head.byteLength && Buffer.from(wte.buffer, wte.byteOffset, wte.byteLength).equals(Buffer.from(head.buffer, head.byteOffset, head.byteLength))) {
    return { equal: true, differingRows: 0, maxAbsDiff: 0 };
  }
  const a = decodeToF32(wteDtype as FloatCodecDtype, wte);
  const b = decodeToF32(headDtype as FloatCodecDtype, head);
  let differingRows = 0;
  let maxAbsDiff = 0;
  const rows = Math.floor(Math.min(a.length, b.length) / Math.max(1, dim));
  for (let r = 0; r < rows; r++) {
    let rowDiffers = false;
    for (let c = 0; c < dim; c++) {
      const i = r * dim + c;
      const d = Math.abs(a[i]! - b[i]!);
      if (d > 0 || Object.is(a[i], b[i]) === false) rowDiffers = true;
      if (d > maxAbsDiff) maxAbsDiff = d;
    }
    if (rowDiffers) differingRows++;
  }
  return { equal: false, differingRows, maxAbsDiff };
}
