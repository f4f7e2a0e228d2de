import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { literalPattern, removeStaleScratchDirs, STALE_AFTER_MS } from './scratch-dirs.js';

let parent: string;
beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'lorafuse-scratch-test-'));
});
afterAll(async () => {
  await rm(parent, { recursive: true, force: true });
});

async function scratch(name: string, ageMs: number): Promise<string> {
  const dir = join(parent, name);
  await mkdir(join(dir, 'profile'), { recursive: true });
  await writeFile(join(dir, 'profile', 'Local State'), '{}');
  const t = (Date.now() - ageMs) / 1000;
  await utimes(dir, t, t);
  return dir;
}

describe('stale scratch directories', () => {
  it('removes old ones no process names, and keeps young ones, ones in use, and other names', async () => {
    const stale = await scratch('lorafuse-chromium-AbC123', STALE_AFTER_MS + 60_000);
    const young = await scratch('lorafuse-chromium-yOuNg1', 1_000);
    const inUse = await scratch('lorafuse-chromium-iNuSe1', STALE_AFTER_MS + 60_000);
    const other = await scratch('lorafuse-chromium-longer-name', STALE_AFTER_MS + 60_000);
    // A process with the directory on its command line, as a live run's Chromium has its profile.
    const holder = spawn('sh', ['-c', 'sleep 30', `--user-data-dir=${inUse}/profile`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(await removeStaleScratchDirs(parent)).toEqual([stale]);
      expect(existsSync(stale)).toBe(false);
      for (const kept of [young, inUse, other]) expect(existsSync(kept), kept).toBe(true);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('never throws, for a parent that does not exist', async () => {
    expect(await removeStaleScratchDirs(join(parent, 'missing'))).toEqual([]);
  });

  it('quotes every regular-expression character of a path', () => {
    expect(new RegExp(literalPattern('/tmp/a.b+c(1)[x]$')).test('/tmp/a.b+c(1)[x]$')).toBe(true);
    expect(new RegExp(literalPattern('/tmp/a.b')).test('/tmp/aXb')).toBe(false);
  });
});
