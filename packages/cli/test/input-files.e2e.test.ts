/**
 * Input paths that are not regular files, and OS errors. A FIFO (opening it would block), a symlink
 * to /dev/zero (reading it never ends), a directory or a socket where a file belongs is refused at
 * once with exit 2, naming the path and what it is, by every command; OS errors on inputs and on
 * --out name the path and the OS code and never call themselves a bug in lorafuse.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

/** A child still running after this is blocked on its input. */
const PROMPT_MS = 20_000;

let work: string;
let baseDir: string;
let adapterDir: string;
let merged: string;
const servers: Server[] = [];

async function promptly(args: string[]) {
  const started = Date.now();
  const r = await runLorafuse(args, {}, PROMPT_MS);
  expect(Date.now() - started, `${args.join(' ')} hung`).toBeLessThan(PROMPT_MS);
  expect(r.stderr + r.stdout).not.toMatch(/bug in lorafuse|\n\s+at /);
  return r;
}

/** Makes `path` a special file of `kind`. */
async function makeSpecial(path: string, kind: string): Promise<void> {
  if (kind === 'FIFO') execFileSync('mkfifo', [path]);
  else if (kind === '/dev/zero symlink') await symlink('/dev/zero', path);
  else if (kind === 'directory') await mkdir(path);
  else if (kind === 'socket') {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
  } else throw new Error(kind);
}

const KINDS = [
  ['FIFO', 'a FIFO (named pipe)'],
  ['/dev/zero symlink', 'a character device'],
  ['directory', 'a directory'],
  ['socket', 'a socket'],
] as const;

beforeAll(async () => {
  work = await tempDir('lorafuse-input-files-');
  const base = await makeGpt2Checkpoint({ seed: 8 });
  baseDir = await writeDir(join(work, 'base'), base.files);
  adapterDir = await writeDir(join(work, 'adapter'), (await makeLoraAdapter({ seed: 9, modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 4) })).files);
  merged = join(work, 'merged');
  const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', merged, '--device', 'cpu']);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);
afterAll(async () => {
  for (const s of servers) s.close();
  await removeDir(work);
});

describe.each(KINDS)('a %s where a file belongs', (kind, what) => {
  let dir: string;
  let weights: string;
  beforeAll(async () => {
    dir = join(work, kind.replace(/\W/g, '-'));
    await mkdir(dir);
    await copyFile(join(baseDir, 'config.json'), join(dir, 'config.json'));
    weights = join(dir, 'model.safetensors');
    await makeSpecial(weights, kind);
  });

  it('as model.safetensors: merge, verify, inspect, diff and doctor exit 2 at once naming it', async () => {
    const message = `${weights} is ${what}, not a regular file`;
    for (const args of [
      ['merge', dir, adapterDir, '--out', join(work, `out-${kind.replace(/\W/g, '-')}`), '--device', 'cpu'],
      ['verify', merged, '--base', dir, '--adapter', adapterDir],
      ['verify', dir, '--base', baseDir, '--adapter', adapterDir],
      ['diff', dir, baseDir, '--device', 'cpu'],
      // A directory given to diff is a directory to compare, not a file.
      ...(kind === 'directory' ? [] : [['diff', baseDir, weights, '--device', 'cpu']]),
      ['doctor', dir, adapterDir],
    ]) {
      const r = await promptly(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout + r.stderr, args.join(' ')).toContain(message);
    }
    // Likewise inspect: a directory is inspected as a checkpoint directory.
    if (kind !== 'directory') {
      const r = await promptly(['inspect', weights]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
    const json = await promptly(['merge', dir, adapterDir, '--out', join(work, 'out-json'), '--device', 'cpu', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { code: 'INPUT_NOT_A_FILE', kind: 'input', subject: weights } });
    expect(existsSync(join(work, 'out-json'))).toBe(false);
  });
});

describe('configs, the index and adapter files that are not regular files', () => {
  it('config.json, adapter_config.json, adapter_model.safetensors and the shard index', async () => {
    const cases: Array<{ dir: string; file: string; kind: string; args: (dir: string) => string[][] }> = [
      { dir: 'cfg', file: 'config.json', kind: 'FIFO', args: (d) => [['merge', d, adapterDir, '--out', join(work, 'o-cfg'), '--device', 'cpu'], ['inspect', d], ['diff', d, baseDir], ['doctor', d, adapterDir]] },
      { dir: 'acfg', file: 'adapter_config.json', kind: '/dev/zero symlink', args: (d) => [['merge', baseDir, d, '--out', join(work, 'o-acfg'), '--device', 'cpu'], ['verify', merged, '--base', baseDir, '--adapter', d], ['inspect', d], ['doctor', baseDir, d]] },
      { dir: 'aw', file: 'adapter_model.safetensors', kind: 'FIFO', args: (d) => [['merge', baseDir, d, '--out', join(work, 'o-aw'), '--device', 'cpu'], ['inspect', d], ['diff', d, adapterDir], ['doctor', baseDir, d]] },
      { dir: 'idx', file: 'model.safetensors.index.json', kind: '/dev/zero symlink', args: (d) => [['merge', d, adapterDir, '--out', join(work, 'o-idx'), '--device', 'cpu'], ['inspect', d], ['diff', d, baseDir], ['doctor', d, adapterDir]] },
    ];
    for (const c of cases) {
      const dir = join(work, c.dir);
      await mkdir(dir);
      const from = c.file.startsWith('adapter') ? adapterDir : baseDir;
      for (const f of c.file.startsWith('adapter') ? ['adapter_config.json', 'adapter_model.safetensors'] : ['config.json']) {
        if (f !== c.file) await copyFile(join(from, f), join(dir, f));
      }
      if (c.file === 'config.json') await copyFile(join(baseDir, 'model.safetensors'), join(dir, 'model.safetensors'));
      await makeSpecial(join(dir, c.file), c.kind);
      for (const args of c.args(dir)) {
        const r = await promptly(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stdout + r.stderr, args.join(' ')).toMatch(new RegExp(`${join(dir, c.file).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is (a FIFO|a character device)`));
      }
    }
  });

  it('a config.json over 64 MiB is refused before it is read', async () => {
    const dir = join(work, 'big');
    await mkdir(dir);
    await copyFile(join(baseDir, 'model.safetensors'), join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'config.json'), Buffer.alloc(64 * 1024 * 1024 + 1, 0x20));
    const r = await promptly(['merge', dir, adapterDir, '--out', join(work, 'o-big'), '--device', 'cpu', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'INPUT_TOO_LARGE', subject: join(dir, 'config.json') });
    expect(JSON.parse(r.stdout).error.message).toMatch(/is 64\.0 MiB; lorafuse reads a file like it whole only up to 64\.0 MiB/);
  });
});

describe('OS errors name the path and the code', () => {
  it('a symlink loop as model.safetensors or config.json (ELOOP)', async () => {
    for (const file of ['model.safetensors', 'config.json']) {
      const dir = join(work, `loop-${file}`);
      await mkdir(dir);
      for (const f of ['config.json', 'model.safetensors']) if (f !== file) await copyFile(join(baseDir, f), join(dir, f));
      await symlink(file, join(dir, file));
      for (const args of [['merge', dir, adapterDir, '--out', join(work, 'o-loop'), '--device', 'cpu'], ['diff', dir, baseDir], ['doctor', dir, adapterDir]]) {
        const r = await promptly(args);
        expect(r.code).toBe(2);
        expect(r.stdout + r.stderr).toContain(`cannot read ${join(dir, file)}: too many symbolic links encountered (ELOOP)`);
      }
    }
  });

  it('an input path under a regular file (ENOTDIR)', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    for (const args of [['inspect', join(file, 'model.safetensors')], ['diff', join(file, 'model.safetensors'), baseDir]]) {
      const r = await promptly([...args, '--json']);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'INPUT_PATH', kind: 'input', message: `cannot read ${join(file, 'model.safetensors')}: not a directory (ENOTDIR)` });
    }
  });

  it('--out under a regular file (ENOTDIR) and --out where the machine refuses to create it', async () => {
    const file = join(work, 'out-parent-file');
    await writeFile(file, 'x');
    const under = await promptly(['merge', baseDir, adapterDir, '--out', join(file, 'out'), '--device', 'cpu']);
    expect(under.code).toBe(2);
    expect(under.stderr).toContain(`cannot use the output directory ${join(file, 'out')}: not a directory (ENOTDIR)`);
    // sysfs refuses new directories to everyone, root included: a read-only place without privileges.
    if (existsSync('/sys/kernel')) {
      const ro = await promptly(['merge', baseDir, adapterDir, '--out', '/sys/lorafuse-test-out', '--device', 'cpu', '--json']);
      expect(ro.code).toBe(2);
      expect(JSON.parse(ro.stdout).error).toMatchObject({ code: 'OUTPUT_NOT_WRITABLE', kind: 'environment', subject: '/sys/lorafuse-test-out' });
    }
  });
});
