/**
 * Output into a reader that went away (`lorafuse inspect … | head -1`): no EPIPE stack trace, and the
 * exit code is the command's own (0 ok, 1 differs, 2 error), never the 1 of a crash.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { CLI, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
let bigBase: string;
let adapterDir: string;
let merged: string;

/** Runs the CLI with its stdout closed by the reader before anything is written. */
function withClosedStdout(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

beforeAll(async () => {
  work = await tempDir('lorafuse-closed-pipe-');
  baseDir = await writeDir(join(work, 'base'), (await makeGpt2Checkpoint({ seed: 11 })).files);
  // About 1,150 tensors: its --json listing is larger than a pipe holds, so `head -c 1` closes it mid-write.
  bigBase = await writeDir(join(work, 'big'), (await makeGpt2Checkpoint({ seed: 12, nEmbd: 4, nHead: 2, nLayer: 96, vocabSize: 8, nPositions: 4 })).files);
  adapterDir = await writeDir(join(work, 'adapter'), (await makeLoraAdapter({ seed: 13, modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 4) })).files);
  merged = join(work, 'merged');
  expect((await runLorafuse(['merge', baseDir, adapterDir, '--out', merged, '--device', 'cpu'])).code).toBe(0);
}, 60_000);
afterAll(async () => {
  await removeDir(work);
});

describe('a closed stdout', () => {
  it.each([
    ['inspect', () => ['inspect', bigBase], 0],
    ['inspect --json', () => ['inspect', bigBase, '--json'], 0],
    ['doctor', () => ['doctor', baseDir, adapterDir], 0],
    ['diff (differs)', () => ['diff', merged, baseDir, '--device', 'cpu'], 1],
    ['verify', () => ['verify', merged, '--base', baseDir, '--adapter', adapterDir], 0],
    ['merge', () => ['merge', baseDir, adapterDir, '--out', join(work, 'out-closed'), '--device', 'cpu'], 0],
    ['an error on --json', () => ['inspect', join(work, 'missing'), '--json'], 2],
  ] as const)('%s: exits with its own code, no stack trace', async (_name, args, want) => {
    const r = await withClosedStdout(args());
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at |bug in lorafuse/);
    expect(r.code, r.stderr).toBe(want);
  });

  it('a real pipe into `head -c 1`: exit 0 and nothing on stderr', () => {
    const script = `"${process.execPath}" "${CLI}" inspect "${bigBase}" --json 2>"${join(work, 'stderr.txt')}" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"; cat "${join(work, 'stderr.txt')}"`;
    const out = execFileSync('bash', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toBe('0\n');
  });
});
