/** bench/io-floor: the `cp + fsync` floor is traced to fsync its copy. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCpFsync } from './io-floor.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;

describe('checkCpFsync', () => {
  it.skipIf(!hasStrace)('sees the fsync of the copy and leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorafuse-bench-test-'));
    try {
      const check = checkCpFsync(dir);
      // null where the sandbox forbids tracing; never false: GNU `sync FILE` fsyncs FILE.
      expect(check.fsynced).not.toBe(false);
      if (check.fsynced) expect(check.detail).toMatch(/fsync\(\d+<…\/fsync-check-dst\.bin>\) = 0/);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
