import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeToF32, memorySource, readSafetensorsHeader, type FloatCodecDtype, type SafetensorsHeader } from '@lorafuse/core';
import { testModeEnv } from './mesa-vulkan.js';

export const CLI = fileURLToPath(new URL('../bin/lorafuse.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI as a user would (`node bin/lorafuse.js ...`), with `env` on top of this
 * process's environment (and, in the Mesa test mode, the Mesa drivers: see mesa-vulkan.ts); killed
 * (SIGKILL) after `timeoutMs` if given.
 */
export function runLorafuse(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...testModeEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(timeoutMs ? { timeout: timeoutMs, killSignal: 'SIGKILL' as const } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A fresh temporary directory. */
export async function tempDir(prefix = 'lorafuse-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes `files` (name → bytes) into `dir`. */
export async function writeDir(dir: string, files: Record<string, Uint8Array | string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  return dir;
}

/** A checkpoint read back: header and tensors as f32 (for float dtypes) and raw bytes. */
export interface ReadBack {
  header: SafetensorsHeader;
  bytes: Uint8Array;
  raw(name: string): Uint8Array;
  f32(name: string): Float32Array;
}

export async function readCheckpoint(path: string): Promise<ReadBack> {
  const bytes = new Uint8Array(await readFile(path));
  const header = await readSafetensorsHeader(memorySource(path, bytes));
  const raw = (name: string) => {
    const t = header.byName.get(name);
    if (!t) throw new Error(`${path} has no tensor ${name}`);
    return bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength);
  };
  return { header, bytes, raw, f32: (name) => decodeToF32(header.byName.get(name)!.dtype as FloatCodecDtype, raw(name)) };
}

export const removeDir = (dir: string) => rm(dir, { recursive: true, force: true });

/**
 * Independent f64 reference of `W + s·delta` written from the PEFT formulas (not the kernels' code):
 * Conv1D W [in, out] gets (B@A)ᵀ; Linear W [out, in] gets B@A.
 */
export function expectedMerge(w: Float32Array, a: Float32Array, b: Float32Array, rank: number, wShape: readonly number[], conv1d: boolean, scale: number): Float64Array {
  const [rows, cols] = wShape as [number, number];
  const inF = conv1d ? rows : cols;
  const outF = conv1d ? cols : rows;
  const ba = new Float64Array(outF * inF); // B@A, [out, in]
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) {
    let s = 0;
    for (let k = 0; k < rank; k++) s += b[o * rank + k]! * a[k * inF + i]!;
    ba[o * inF + i] = s;
  }
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const delta = conv1d ? ba[c * inF + r]! : ba[r * inF + c]!;
    out[r * cols + c] = w[r * cols + c]! + scale * delta;
  }
  return out;
}

/** Largest violation of |x - y| <= atol + rtol·|y| (<= 0 means within tolerance). */
export function worstViolation(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): number {
  let worst = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const v = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (v > worst) worst = v;
  }
  return expected.length === 0 ? 0 : worst;
}

/** Chromium processes started under `tmp` (each run gets its own TMPDIR, so other tests' browsers are never touched). */
export function chromiumUnder(tmp: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `${tmp}/lorafuse-chromium-`], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Polls `cond` every 20 ms until it holds or `ms` have passed; returns its last value. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}
