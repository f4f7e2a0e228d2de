/**
 * Verification: does what transformers will load from a directory equal what was meant? For every
 * parameter of the emulated load (v4 and v5 rules), the loaded tensor is checked against the intended
 * effective tensor; a parameter transformers would initialise randomly is a failure, and so is a
 * parameter whose loaded value differs (the tie case names `lm_head.weight`). Comparisons are
 * injected: byte digests after lorafuse's own merge, tolerances for outputs written by others.
 */
import type { LoadEmulation, LoadedParam } from '../load/emulate-load.js';

/** The outcome for one parameter under one version's rules. */
export interface ParamCheck {
  readonly name: string;
  readonly ok: boolean;
  /** `equal`: byte-identical; `close`: within tolerance; the rest are failures. */
  readonly status: 'equal' | 'close' | 'differs' | 'random' | 'shape' | 'no-intent';
  readonly detail: string;
  readonly maxAbsDiff?: number;
  readonly via?: LoadedParam['via'];
}

/** Verification under each emulated transformers version. */
export interface VerifyReport {
  readonly ok: boolean;
  readonly byVersion: ReadonlyArray<{ readonly version: string; readonly ok: boolean; readonly tied: boolean; readonly checks: readonly ParamCheck[]; readonly discarded: LoadEmulation['discarded']; readonly notes: readonly string[] }>;
  /** Failed checks across versions, deduplicated by parameter and status. */
  readonly failures: readonly (ParamCheck & { readonly versions: readonly string[] })[];
}

/** Compares one loaded parameter with its intended value. */
export type CheckParam = (param: LoadedParam) => Promise<ParamCheck>;

/**
 * Verifies every parameter of each emulated load. A parameter that two versions load from the same
 * stored tensor the same way is checked once (v4 and v5 agree on almost every parameter, and a
 * check may read hundreds of megabytes). `concurrency` checks run at once (default 1: a check that
 * holds whole tensors in memory should not run four at a time).
 */
export async function verifyLoads(emulations: readonly LoadEmulation[], check: CheckParam, options: { concurrency?: number } = {}): Promise<VerifyReport> {
  const memo = new Map<string, Promise<ParamCheck>>();
  const checkOnce = (param: LoadedParam): Promise<ParamCheck> => {
    const ref = param.ref!;
    const key = JSON.stringify([param.name, ref.file, ref.fileOffset, ref.byteLength, ref.dtype, param.via ?? '']);
    let result = memo.get(key);
    if (!result) {
      result = check(param);
      memo.set(key, result);
    }
    return result;
  };
  const perVersion = emulations.map((emu) => ({ emu, params: [...emu.params.values()] }));
  // One queue over all versions, so the limit holds across them.
  const jobs = perVersion.flatMap(({ params }, v) => params.map((param, i) => ({ v, i, param })));
  const results: ParamCheck[][] = perVersion.map(({ params }) => new Array<ParamCheck>(params.length));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const { v, i, param } = jobs[next++]!;
      results[v]![i] =
        param.ref === null
          ? { name: param.name, ok: false, status: 'random', detail: `transformers ${perVersion[v]!.emu.version} initialises ${param.name} randomly: the checkpoint has no value for it` }
          : await checkOnce(param);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, lane));

  const byVersion: VerifyReport['byVersion'][number][] = [];
  const failures = new Map<string, ParamCheck & { versions: string[] }>();
  perVersion.forEach(({ emu }, v) => {
    const checks = results[v]!;
    for (const result of checks) {
      if (!result.ok) {
        const key = `${result.name}|${result.status}`;
        const prior = failures.get(key);
        if (prior) prior.versions.push(emu.version);
        else failures.set(key, { ...result, versions: [emu.version] });
      }
    }
    byVersion.push({ version: emu.version, ok: checks.every((c) => c.ok), tied: emu.tied, checks, discarded: emu.discarded, notes: emu.notes });
  });
  return { ok: failures.size === 0, byVersion, failures: [...failures.values()] };
}
