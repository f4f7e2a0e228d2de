/**
 * After lorafuse's own merge: re-open the written file, emulate what transformers v4 and v5 load
 * from it, and require every loaded parameter to be byte-identical to the intended tensor (the input
 * bytes for copies, the executor's own result for merges).
 */
import { canonicalName, emulateTransformersLoad, readSafetensorsHeader, VerificationError, verifyLoads, type ByteSource, type PlannedTensor, type TensorRef, type VerifyReport } from '@lorafuse/core';
import { byteRangesEqual } from '../fs/byte-ranges.js';
import { openFileSource } from '../fs/file-source.js';
import { digestRange } from './digest.js';

/**
 * What a parameter was meant to be: the SHA-256 of computed bytes (merges, tie candidates), or an
 * input byte range that was copied (compared byte for byte: cheaper than hashing 500 MB twice).
 */
export type Intent = { readonly digest: string } | { readonly range: TensorRef };

/** The intent for a parameter, `'accept-any'` for a loss the user forced, or undefined if nothing was meant. */
export type IntentOf = (canonicalParamName: string) => Intent | 'accept-any' | undefined;

export async function verifyWrittenCheckpoint(path: string, config: Record<string, unknown>, planned: readonly PlannedTensor[], intentOf: IntentOf, sourceOf: (file: string) => ByteSource): Promise<VerifyReport> {
  const source = await openFileSource(path);
  try {
    const header = await readSafetensorsHeader(source);
    const problems: string[] = [];
    for (const t of planned) {
      const got = header.byName.get(t.name);
      if (!got) problems.push(`"${t.name}" is missing`);
      else if (got.dtype !== t.dtype || got.shape.join(',') !== t.shape.join(',')) problems.push(`"${t.name}" is ${got.dtype} [${got.shape.join(', ')}], planned ${t.dtype} [${t.shape.join(', ')}]`);
    }
    if (header.tensors.length !== planned.length) problems.push(`${header.tensors.length} tensors written, ${planned.length} planned`);
    if (problems.length > 0) {
      throw new VerificationError('OUTPUT_HEADER_MISMATCH', `the written model.safetensors does not match the plan: ${problems.slice(0, 5).join('; ')}`, { subject: 'model.safetensors' });
    }
    const digests = new Map<number, Promise<string>>();
    const digestOf = (ref: TensorRef) => {
      let d = digests.get(ref.fileOffset);
      if (!d) {
        d = digestRange(source, ref.fileOffset, ref.byteLength);
        digests.set(ref.fileOffset, d);
      }
      return d;
    };
    const equal = async (a: TensorRef, b: TensorRef) => a.byteLength === b.byteLength && a.dtype === b.dtype && (await digestOf(a)) === (await digestOf(b));
    const emulations = [
      await emulateTransformersLoad({ config, files: [header], version: 'v4', equal }),
      await emulateTransformersLoad({ config, files: [header], version: 'v5', equal }),
    ];
    return await verifyLoads(emulations, async (param) => {
      const intended = intentOf(canonicalName(param.name));
      const via = param.via ? ` (loaded through the tie from ${param.ref!.name})` : '';
      if (intended === 'accept-any') return { name: param.name, ok: true, status: 'equal', detail: 'accepted: the user kept the tie with --force', ...(param.via ? { via: param.via } : {}) };
      if (intended === undefined) return { name: param.name, ok: false, status: 'no-intent', detail: `loaded from "${param.ref!.name}", but the merge meant no value for it` };
      const ref = param.ref!;
      const same = 'digest' in intended
        ? (await digestOf(ref)) === intended.digest
        : intended.range.byteLength === ref.byteLength && (await byteRangesEqual(source, ref.fileOffset, sourceOf(intended.range.file), intended.range.fileOffset, ref.byteLength));
      return same
        ? { name: param.name, ok: true, status: 'equal', detail: `byte-identical to the intended tensor${via}`, ...(param.via ? { via: param.via } : {}) }
        : { name: param.name, ok: false, status: 'differs', detail: `the loaded values differ from the intended tensor${via}`, ...(param.via ? { via: param.via } : {}) };
    }, { concurrency: 4 });
  } finally {
    await source.close();
  }
}
