/** Byte-array equality, used by the tie decision, the proofs and the app's input checks. */

/** Whether two byte arrays are equal: four bytes a step where both are aligned for it. */
export function bytesEqual(x: Uint8Array, y: Uint8Array): boolean {
  if (x.byteLength !== y.byteLength) return false;
  let i = 0;
  if (x.byteOffset % 4 === 0 && y.byteOffset % 4 === 0) {
    const words = x.byteLength >>> 2;
    const xw = new Uint32Array(x.buffer, x.byteOffset, words);
    const yw = new Uint32Array(y.buffer, y.byteOffset, words);
    for (let k = 0; k < words; k++) if (xw[k] !== yw[k]) return false;
    i = words << 2;
  }
  for (; i < x.byteLength; i++) if (x[i] !== y[i]) return false;
  return true;
}
