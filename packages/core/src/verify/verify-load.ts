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

/** Verifies every parameter of each emulated load. */
export async function verifyLoads(emulations: readonly LoadEmulation[], check: CheckParam): Promise<VerifyReport> {
  const byVersion = [];
  const failures = new Map<string, ParamCheck & { versions: string[] }>();
  for (const emu of emulations) {
    const checks: ParamCheck[] = [];
    for (const param of emu.params.values()) {
      let result: ParamCheck;
      if (param.ref === null) {
        result = { name: param.name, ok: false, status: 'random', detail: `transformers ${emu.version} initialises ${param.name} randomly: the checkpoint has no value for it` };
      } else {
        result = await check(param);
      }
      checks.push(result);
      if (!result.ok) {
        const key = `${result.name}|${result.status}`;
        const prior = failures.get(key);
        if (prior) prior.versions.push(emu.version);
        else failures.set(key, { ...result, versions: [emu.version] });
      }
    }
    byVersion.push({ version: emu.version, ok: checks.every((c) => c.ok), tied: emu.tied, checks, discarded: emu.discarded, notes: emu.notes });
  }
  return { ok: failures.size === 0, byVersion, failures: [...failures.values()] };
}
