/**
 * `lorafuse verify`: any merged directory — lorafuse's, or one PEFT's merge_and_unload +
 * save_pretrained wrote — against base + adapter, or several adapters weighted as one merge. The
 * plan says what every parameter's effective weight is; the proof (the same one a merge runs on its own output) checks what transformers loads
 * from the directory against it, recomputing merged tensors on the chosen device and allowing the
 * stated tolerance, since another tool rounds and orders its sums its own way.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { computeLoraBias, computeTokenRows, effectiveParameters, planMerge, type FollowRule, type MergeTensor, type PlannedTensor, type TensorRef, type VerifyReport } from '@lorafuse/core';
import { openMergeDeviceOfKind, startCpuMergePool, type CpuMergePool, type MergeExecutor } from '../devices/index.js';
import { openAdapterDir, openBaseDir, OpenFiles, planInputOf, type AdapterDir } from '../fs/inputs.js';
import { Progress, type Io } from '../output.js';
import { checkDuplicateCopies } from '../proof/check-duplicates.js';
import { fileChecks } from '../proof/file-checks.js';
import { proveLoads } from '../proof/prove-loads.js';
import { runBehaviourCheck, type BehaviourOptions, type BehaviourSection } from '../forward/behaviour-check.js';

/** What `lorafuse verify` was asked to check. */
export interface VerifyOptions {
  outDir: string;
  baseDir: string;
  /** The adapters the directory was merged from, in merge order (at least one). */
  adapterDirs: readonly string[];
  /** One weight per adapter (unset: all 1). */
  weights?: readonly number[] | undefined;
  atol: number;
  rtol: number;
  device: 'cpu' | 'webgpu' | 'dawn';
  /** NaN in the merged tensors counts as equal to NaN (the output of `merge --allow-nonfinite`). */
  allowNonFinite: boolean;
  /** Which side wins when adapter_config.json and the tensors disagree (unset: an error). */
  follow?: FollowRule | undefined;
  /** Also compare the models' logits and greedy decoding (`--behaviour`). */
  behaviour?: BehaviourOptions | undefined;
  io: Io;
  quiet: boolean;
}

/** The report `verify --json` prints. */
export interface VerifyCommandReport extends VerifyReport {
  readonly out: string;
  /** The adapters checked against, in merge order, with their weights. */
  readonly adapters: ReadonlyArray<{ readonly dir: string; readonly weight: number }>;
  readonly extraFailures: readonly string[];
  readonly behaviour?: BehaviourSection;
}

/** Verifies `outDir` against what base + adapter mean. */
export async function runVerify(opts: VerifyOptions): Promise<VerifyCommandReport> {
  const files = new OpenFiles();
  let executor: MergeExecutor | undefined;
  // Worker threads for the CPU executor's merges and for the proof's reads (see merge's resources).
  let threads: CpuMergePool | undefined;
  try {
    const base = await openBaseDir(opts.baseDir, files);
    const adapters: AdapterDir[] = [];
    for (const dir of opts.adapterDirs) adapters.push(await openAdapterDir(dir, files));
    const out = await openBaseDir(opts.outDir, files);
    const extraFailures: string[] = [];
    if (existsSync(join(out.dir, 'adapter_config.json'))) {
      extraFailures.push('adapter_config.json is in the merged directory: transformers/PEFT would apply the adapter again on load; remove it');
    }
    const plan = planMerge({ ...planInputOf(base, adapters, opts.weights), ...(opts.follow ? { options: { follow: opts.follow } } : {}) });
    // A tensor two adapters both give is meant only if they agree on it.
    await checkDuplicateCopies(plan, files);
    const intended = effectiveParameters(plan);
    threads = startCpuMergePool();
    executor = await openMergeDeviceOfKind(opts.device, files, { cpuPool: threads });
    const exec = executor;
    const read = (r: TensorRef) => files.get(r.file).read(r.fileOffset, r.byteLength);
    const compute = async (want: PlannedTensor): Promise<Uint8Array> => {
      const src = want.source;
      if (src.kind === 'merge') return (await exec.merge(want as MergeTensor)).bytes;
      if (src.kind === 'bias') return (await computeLoraBias(src, read)).bytes;
      if (src.kind === 'rows') return computeTokenRows(src, read);
      return read(src.from);
    };
    const progress = new Progress(opts.io, 'verifying', 2 * out.headers.reduce((n, h) => n + h.tensors.length, 0), opts.quiet);
    let done = 0;
    const report = await proveLoads({
      config: out.config,
      headers: out.headers,
      sourceOf: (file) => files.get(file),
      intendedOf: (name) => {
        const t = intended.get(name);
        return t ? { kind: 'tensor', tensor: t } : undefined;
      },
      meantBy: adapters.length > 1 ? 'base + adapters' : 'base + adapter',
      tolerance: { atol: opts.atol, rtol: opts.rtol, equalNan: opts.allowNonFinite },
      compute,
      onCheck: (param) => progress.update(++done, param.name),
    }, fileChecks(threads));
    progress.done();
    const behaviour = opts.behaviour ? await runBehaviourCheck(opts.outDir, opts.baseDir, opts.adapterDirs, opts.weights, files, opts.behaviour) : undefined;
    const ok = report.ok && extraFailures.length === 0 && (behaviour?.ok ?? true);
    return { ...report, ok, out: out.dir, adapters: plan.adapters.map((a) => ({ dir: a.label, weight: a.weight })), extraFailures, ...(behaviour ? { behaviour } : {}) };
  } finally {
    await executor?.close();
    // Before the files: a worker may be reading through one of their descriptors.
    await threads?.close();
    await files.closeAll();
  }
}
