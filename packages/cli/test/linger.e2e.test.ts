/**
 * A finished command never hangs: a handle left open (here, a server a preload starts) makes the
 * launcher name what is open and exit with the command's code, instead of waiting forever.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers.js';

const LEAK = "data:text/javascript,import('node:net').then((net) => net.createServer().listen(0, '127.0.0.1'))";

describe('the launcher', () => {
  it('exits with the command\'s code when a handle stays open after the command ended, and says so', () => {
    const r = spawnSync(process.execPath, ['--import', LEAK, CLI, '--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, 'killed by the test\'s timeout: the launcher hung').toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^lorafuse \d/);
    expect(r.stderr).toMatch(/still running 5 s after the command ended \(open: .*TCPServerWrap.*\); exiting/);
  });

  it('exits at once when nothing is left open', () => {
    const r = spawnSync(process.execPath, [CLI, 'nonsense-command'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/still running/);
  });
});
