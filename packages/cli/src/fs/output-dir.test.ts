import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutputTransaction, type OutputOptions } from './output-dir.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'lorafuse-output-dir-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const NAMES = ['config.json', 'model.safetensors', 'tokenizer.json'];
const opts = (overwrite = false): OutputOptions => ({ overwrite, names: NAMES });

/** Writes a small output through a fresh transaction and commits it. */
async function writeOutput(out: string, o: OutputOptions, text = 'new'): Promise<{ tx: OutputTransaction; replaced: string[] }> {
  const tx = new OutputTransaction(out, o);
  await tx.begin();
  for (const name of NAMES) await tx.writeFile(name, new TextEncoder().encode(`${text} ${name}`));
  const { replaced } = await tx.commit();
  return { tx, replaced };
}

/** A pid that no process has (a child that already exited). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

async function contents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of (await readdir(dir)).sort()) out[n] = await readFile(join(dir, n), 'utf8');
  return out;
}

describe('OutputTransaction', () => {
  it('builds the output beside the directory and swaps it in whole; nothing else is left', async () => {
    const out = join(work, 'out');
    const tx = new OutputTransaction(out, opts());
    await tx.begin();
    await tx.writeFile('config.json', new TextEncoder().encode('{}'));
    expect(existsSync(out)).toBe(false);
    const staged = tx.tempPathOf('config.json');
    expect(await readFile(staged, 'utf8')).toBe('{}');
    expect((await readdir(work)).sort()).toEqual(['.out.lorafuse-lock', expect.stringMatching(/^\.out\.lorafuse-staging-[0-9a-f]+$/)]);
    expect(await tx.commit()).toEqual({ replaced: [] });
    expect(await readdir(work)).toEqual(['out']);
    expect(await contents(out)).toEqual({ 'config.json': '{}' });
  });

  it('abort removes the staging directory, the lock and the parents it created', async () => {
    const out = join(work, 'a', 'b', 'out');
    const tx = new OutputTransaction(out, opts());
    await tx.begin();
    await tx.writeFile('config.json', new Uint8Array(10));
    await tx.abort();
    expect(await readdir(work)).toEqual([]);
  });

  it('abort waits for writes in flight; writes after it are refused, never thrown at a closed file', async () => {
    const out = join(work, 'out');
    const tx = new OutputTransaction(out, opts());
    await tx.begin();
    const f = await tx.createFile('model.safetensors');
    const chunk = new Uint8Array(1 << 20);
    const writes = Array.from({ length: 64 }, (_, i) => f.writeAt(i * chunk.byteLength, chunk));
    const aborted = tx.abort();
    const late = f.writeAt(0, chunk);
    const settled = Promise.allSettled([...writes, late]);
    await aborted;
    const outcomes = await settled;
    expect(outcomes.at(-1)).toMatchObject({ status: 'rejected', reason: { code: 'OUTPUT_ABANDONED' } });
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { code?: string }).code).toBe('OUTPUT_ABANDONED');
    expect(await readdir(work)).toEqual([]);
  });

  it('a file written out of order past several background data syncs holds every byte; abort mid-sync leaves nothing', async () => {
    const out = join(work, 'out');
    const tx = new OutputTransaction(out, opts());
    await tx.begin();
    const f = await tx.createFile('model.safetensors');
    // 48 MiB in 1 MiB chunks, written from the end backwards and a few at once: the data syncs
    // (every 16 MiB) run while writes are in flight.
    const chunk = (i: number) => new Uint8Array(1 << 20).fill(i + 1);
    const order = Array.from({ length: 48 }, (_, i) => 47 - i);
    for (let i = 0; i < order.length; i += 4) await Promise.all(order.slice(i, i + 4).map((c) => f.writeAt(c << 20, chunk(c))));
    await f.close();
    await tx.commit();
    const bytes = await readFile(join(out, 'model.safetensors'));
    expect(bytes.byteLength).toBe(48 << 20);
    const wrong = order.filter((c) => bytes.subarray(c << 20, (c + 1) << 20).some((b) => b !== c + 1));
    expect(wrong).toEqual([]);

    const again = new OutputTransaction(join(work, 'other'), opts());
    await again.begin();
    const g = await again.createFile('model.safetensors');
    await Promise.all(Array.from({ length: 20 }, (_, c) => g.writeAt(c << 20, chunk(c))));
    await again.abort();
    expect((await readdir(work)).sort()).toEqual(['out']);
  });

  it('--overwrite replaces an earlier output and lists what it replaced; an empty directory is simply used', async () => {
    const out = join(work, 'out');
    await mkdir(out);
    expect((await writeOutput(out, opts(), 'one')).replaced).toEqual([]);
    await writeFile(join(out, 'model-00001-of-00002.safetensors'), 'old shard');
    const { replaced } = await writeOutput(out, opts(true), 'two');
    expect(replaced).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model.safetensors', 'tokenizer.json']);
    expect(await contents(out)).toEqual({ 'config.json': 'two config.json', 'model.safetensors': 'two model.safetensors', 'tokenizer.json': 'two tokenizer.json' });
    expect(await readdir(work)).toEqual(['out']);
  });

  it('without --overwrite a non-empty directory is refused and named with what it holds, hidden files included', async () => {
    const out = join(work, 'out');
    await mkdir(out);
    await writeFile(join(out, '.leftover'), 'x');
    const tx = new OutputTransaction(out, opts());
    await expect(tx.begin()).rejects.toMatchObject({ code: 'OUT_DIR_NOT_EMPTY', message: expect.stringContaining('.leftover') });
    expect(await readdir(work)).toEqual(['out']);
  });

  it.each([
    ['a hidden file', async (out: string) => writeFile(join(out, '.env'), 'secret'), '.env'],
    ['an unrelated file', async (out: string) => writeFile(join(out, 'notes.txt'), 'mine'), 'notes.txt'],
    ['a sub-directory', async (out: string) => mkdir(join(out, 'runs')), 'runs/'],
    ['a link named like an output file', async (out: string) => symlink('/etc/hostname', join(out, 'tokenizer.json')), 'tokenizer.json'],
  ])('--overwrite refuses a directory holding %s and changes nothing', async (_what, add, listed) => {
    const out = join(work, 'out');
    await writeOutput(out, opts(), 'one');
    await unlink(join(out, 'tokenizer.json'));
    await add(out);
    const before = (await readdir(out)).sort();
    const tx = new OutputTransaction(out, opts(true));
    await expect(tx.begin()).rejects.toMatchObject({ code: 'OUT_DIR_HAS_OTHER_FILES', message: expect.stringContaining(listed) });
    expect((await readdir(out)).sort()).toEqual(before);
    expect(await readdir(work)).toEqual(['out']);
  });

  it('a file appearing while the output is written makes the commit refuse; the earlier output stays', async () => {
    const out = join(work, 'out');
    await writeOutput(out, opts(), 'one');
    const tx = new OutputTransaction(out, opts(true));
    await tx.begin();
    await tx.writeFile('config.json', new TextEncoder().encode('two'));
    await writeFile(join(out, 'notes.txt'), 'mine');
    await expect(tx.commit()).rejects.toMatchObject({ code: 'OUT_DIR_HAS_OTHER_FILES' });
    await tx.abort();
    expect(await contents(out)).toMatchObject({ 'config.json': 'one config.json', 'notes.txt': 'mine' });
    expect(await readdir(work)).toEqual(['out']);
  });

  it('a second transaction on the same directory is refused while the first holds it, naming its pid', async () => {
    const out = join(work, 'out');
    const first = new OutputTransaction(out, opts());
    await first.begin();
    const second = new OutputTransaction(out, opts());
    await expect(second.begin()).rejects.toMatchObject({ code: 'OUT_DIR_IN_USE', kind: 'usage', message: `output directory ${out} is in use by another lorafuse (pid ${process.pid})` });
    await first.abort();
    await writeOutput(out, opts());
    expect(await readdir(work)).toEqual(['out']);
  });

  it('takes over a stale lock and clears a dead run\'s staging directory, saying so', async () => {
    const out = join(work, 'out');
    const pid = deadPid();
    await writeFile(join(work, '.out.lorafuse-lock'), JSON.stringify({ pid, host: hostname(), token: 'dead' }));
    await mkdir(join(work, '.out.lorafuse-staging-0123456789ab'));
    await writeFile(join(work, '.out.lorafuse-staging-0123456789ab', 'model.safetensors'), 'partial');
    const { tx } = await writeOutput(out, opts());
    expect(tx.notes).toEqual([expect.stringMatching(new RegExp(`^removed what an interrupted lorafuse run \\(pid ${pid}\\) left behind: its lock .*\\.out\\.lorafuse-lock, .*\\.out\\.lorafuse-staging-0123456789ab$`))]);
    expect(await readdir(work)).toEqual(['out']);
  });

  it("names (and leaves) what killed runs into other outputs of the same parent left; a live run's is not named", async () => {
    // Dead: a staging directory whose lock is gone, and a set-aside earlier output whose lock names a
    // process that no longer runs.
    await mkdir(join(work, '.gone.lorafuse-staging-0123456789ab'));
    await writeFile(join(work, '.gone.lorafuse-staging-0123456789ab', 'model.safetensors'), new Uint8Array(3 * 2 ** 20));
    await writeFile(join(work, '.dead.lorafuse-lock'), JSON.stringify({ pid: deadPid(), host: hostname(), token: 'dead' }));
    await mkdir(join(work, '.dead.lorafuse-replaced-0123456789ab'));
    // Alive: its lock names a running process (pid 1).
    await writeFile(join(work, '.live.lorafuse-lock'), JSON.stringify({ pid: 1, host: hostname(), token: 'live' }));
    await mkdir(join(work, '.live.lorafuse-staging-0123456789ab'));
    const { tx } = await writeOutput(join(work, 'out'), opts());
    expect(tx.notes).toEqual([
      `${join(work, '.dead.lorafuse-replaced-0123456789ab')} (0.0 MiB) is an earlier output of ${join(work, 'dead')} that a run set aside (killed mid-swap, or kept for files lorafuse did not write); the next merge into ${join(work, 'dead')} puts it back or clears lorafuse's files from it`,
      `${join(work, '.gone.lorafuse-staging-0123456789ab')} (3.0 MiB) is what a killed run into ${join(work, 'gone')} left; the next merge into ${join(work, 'gone')} removes it, or remove it now: rm -r ${JSON.stringify(join(work, '.gone.lorafuse-staging-0123456789ab'))}`,
    ]);
    expect(existsSync(join(work, '.gone.lorafuse-staging-0123456789ab')), 'only named, not removed').toBe(true);
  });

  it('puts back an earlier output a dead run had set aside mid-swap', async () => {
    const out = join(work, 'out');
    await writeFile(join(work, '.out.lorafuse-lock'), JSON.stringify({ pid: deadPid(), host: hostname(), token: 'dead' }));
    await mkdir(join(work, '.out.lorafuse-replaced-0123456789ab'));
    await writeFile(join(work, '.out.lorafuse-replaced-0123456789ab', 'config.json'), 'old');
    await mkdir(join(work, '.out.lorafuse-staging-0123456789ab'));
    const tx = new OutputTransaction(out, opts());
    // The earlier output is back, so a run without --overwrite refuses it as before.
    await expect(tx.begin()).rejects.toMatchObject({ code: 'OUT_DIR_NOT_EMPTY' });
    expect(await contents(out)).toEqual({ 'config.json': 'old' });
    expect(await readdir(work)).toEqual(['out']);
  });

  it('keeps a set-aside output holding files lorafuse did not write, and says how to remove it', async () => {
    const out = join(work, 'out');
    await writeOutput(out, opts());
    const aside = join(work, '.out.lorafuse-replaced-0123456789ab');
    await mkdir(aside);
    await writeFile(join(aside, 'config.json'), 'old');
    await writeFile(join(aside, 'mine.txt'), 'keep');
    const { tx } = await writeOutput(out, opts(true));
    expect(tx.notes.join('\n')).toMatch(/kept .*replaced-0123456789ab.*mine\.txt.*rm -r/);
    expect(await contents(aside)).toEqual({ 'mine.txt': 'keep' });
  });

  it('a lock from another host is not judged stale: refused with how to remove it', async () => {
    const out = join(work, 'out');
    const lock = join(work, '.out.lorafuse-lock');
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'elsewhere.example', token: 't' }));
    await expect(new OutputTransaction(out, opts()).begin()).rejects.toMatchObject({
      code: 'OUT_DIR_IN_USE',
      message: expect.stringContaining('pid 1 on host elsewhere.example'),
      hint: expect.stringContaining(`rm ${JSON.stringify(lock)}`),
    });
  });

  it('a lock removed while the output is written makes the commit refuse; nothing changes', async () => {
    const out = join(work, 'out');
    await writeOutput(out, opts(), 'one');
    const tx = new OutputTransaction(out, opts(true));
    await tx.begin();
    await tx.writeFile('config.json', new TextEncoder().encode('two'));
    await unlink(join(work, '.out.lorafuse-lock'));
    await expect(tx.commit()).rejects.toMatchObject({ code: 'OUT_LOCK_LOST' });
    await tx.abort();
    expect(await contents(out)).toMatchObject({ 'config.json': 'one config.json' });
    expect(await readdir(work)).toEqual(['out']);
  });

  it('abandonSync mid-write removes the staging directory and the lock at once', async () => {
    const out = join(work, 'out');
    const tx = new OutputTransaction(out, opts());
    await tx.begin();
    const f = await tx.createFile('model.safetensors');
    await f.write(new Uint8Array(1000));
    tx.abandonSync();
    await expect(f.write(new Uint8Array(1))).rejects.toMatchObject({ code: 'OUTPUT_ABANDONED' });
    await f.close().catch(() => undefined);
    expect(await readdir(work)).toEqual([]);
  });

  it('follows an --out that is a link to a directory, keeping the link', async () => {
    const real = join(work, 'real');
    await writeOutput(real, opts(), 'one');
    await symlink(real, join(work, 'link'));
    await writeOutput(join(work, 'link'), opts(true), 'two');
    expect(await contents(join(work, 'link'))).toMatchObject({ 'config.json': 'two config.json' });
    expect((await readdir(work)).sort()).toEqual(['link', 'real']);
  });
});
