/**
 * The I/O floor of a merge: copying model.safetensors, and copying it then fsyncing the copy (what a
 * merge that makes its output durable cannot beat; lorafuse fsyncs what it writes). The fsync is
 * checked, not assumed: the command is traced once and must call fsync(2) on the copy.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `cp SRC DST`: the page-cache copy (the kernel may not have written a byte when it exits). */
export const CP_ARGV: readonly string[] = ['cp', '{base}/model.safetensors', '{out}/model.safetensors'];

/**
 * `cp SRC DST && sync DST`: GNU coreutils' `sync FILE` opens FILE and calls fsync(2) on it, so the
 * command ends when the copy is on disk. Paths go in as arguments, never into the script text.
 */
export const CP_FSYNC_ARGV: readonly string[] = ['sh', '-c', 'cp -- "$1" "$2" && sync -- "$2"', 'sh', '{base}/model.safetensors', '{out}/model.safetensors'];

/** Whether {@link CP_FSYNC_ARGV} was seen to fsync its copy, and how that was found. */
export interface FsyncCheck {
  /** true: fsync(2) on the copy was traced; false: it was not; null: could not be checked. */
  readonly fsynced: boolean | null;
  readonly detail: string;
}

/**
 * Runs {@link CP_FSYNC_ARGV} once on a small file under `strace -f -y` and looks for fsync or
 * fdatasync on the copy's descriptor. Untimed; the size of the file does not change what is called.
 */
export function checkCpFsync(workDir: string): FsyncCheck {
  const src = join(workDir, 'fsync-check-src.bin');
  const dst = join(workDir, 'fsync-check-dst.bin');
  const trace = join(workDir, 'fsync-check.strace');
  writeFileSync(src, new Uint8Array(1 << 20));
  try {
    const argv = CP_FSYNC_ARGV.map((a) => a.replace('{base}/model.safetensors', src).replace('{out}/model.safetensors', dst));
    const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync,sync,syncfs', '-o', trace, ...argv], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) return { fsynced: null, detail: `not checked: strace could not run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
    if (r.status !== 0) return { fsynced: null, detail: `not checked: strace exited ${r.status} (${r.stderr.trim().split('\n').pop() ?? ''})` };
    const calls = readFileSync(trace, 'utf8').split('\n').filter((l) => /\b(fsync|fdatasync|sync|syncfs)\(/.test(l));
    const onCopy = calls.find((l) => /\b(fsync|fdatasync)\(\d+<[^>]*fsync-check-dst\.bin>\)\s*=\s*0/.test(l));
    if (onCopy) return { fsynced: true, detail: `seen with strace on a 1 MiB copy: ${onCopy.replace(/^\d+\s+/, '').replace(/<[^>]*\//, '<…/').trim()}` };
    return { fsynced: false, detail: `strace saw no fsync of the copy (calls: ${calls.length > 0 ? calls.join('; ').slice(0, 200) : 'none'})` };
  } finally {
    for (const f of [src, dst, trace]) rmSync(f, { force: true });
  }
}
