import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeMessages, startDriverProbe } from './driver-probe.js';
import { ANSWER_PREFIX, ATTEMPT_DONE } from './probe-protocol.js';

/**
 * A stand-in for probe-child.js that speaks its protocol without Dawn: the overlay's MODE says
 * what it does (print like native code, crash, hang), and the answer's adapter names what it saw.
 */
const FAKE_CHILD = `
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
for await (const line of createInterface({ input: process.stdin })) {
  const { overlay } = JSON.parse(line);
  if (overlay.MODE === 'crash') process.kill(process.pid, 'SIGSEGV');
  if (overlay.MODE === 'hang') continue;
  if (overlay.MODE === 'noisy') {
    writeSync(2, 'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\\n - While initializing adapter\\n');
    writeSync(1, 'a driver printf\\n');
  }
  const description = [process.env.FROM_ENV, overlay.MODE].join('/');
  writeSync(2, ${JSON.stringify(ATTEMPT_DONE)});
  writeSync(1, ${JSON.stringify(ANSWER_PREFIX)} + JSON.stringify({ adapter: { vendor: 'fake', architecture: '', device: '', description } }) + '\\n');
}
process.exit(0);
`;

describe('the Vulkan driver probe (its child process speaks through markers)', () => {
  let dir: string;
  let script: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorafuse-probe-'));
    script = join(dir, 'child.mjs');
    await writeFile(script, FAKE_CHILD);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives each attempt its answer and what native code printed on the child's stderr and stdout", async () => {
    const probe = startDriverProbe({ ...process.env, FROM_ENV: 'env' }, { dawnOptions: [], script });
    try {
      expect(await probe.attempt({ MODE: 'quiet' })).toEqual({ adapter: { vendor: 'fake', architecture: '', device: '', description: 'env/quiet' }, nativeOutput: '' });
      const noisy = await probe.attempt({ MODE: 'noisy' });
      expect(noisy).toMatchObject({ adapter: { description: 'env/noisy' } });
      expect(noisy.nativeOutput).toBe('Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n - While initializing adapter\na driver printf\n');
      expect((await probe.attempt({ MODE: 'again' })).nativeOutput).toBe('');
    } finally {
      probe.close();
    }
  });

  it('reports a crashed or hung child as a failed attempt and starts a new one for the next', async () => {
    const probe = startDriverProbe(process.env, { dawnOptions: [], script, timeoutMs: 1000 });
    try {
      expect(await probe.attempt({ MODE: 'crash' })).toEqual({ failure: 'the driver probe was killed by SIGSEGV while Dawn started these drivers', nativeOutput: '' });
      expect(await probe.attempt({ MODE: 'hang' })).toEqual({ failure: 'the driver probe did not answer within 1 s', nativeOutput: '' });
      expect(await probe.attempt({ MODE: 'after' })).toMatchObject({ adapter: { description: '/after' } });
    } finally {
      probe.close();
    }
  });

  it("reports a child that cannot run as a failed attempt with node's own words", async () => {
    const probe = startDriverProbe(process.env, { dawnOptions: [], script: join(dir, 'missing.mjs') });
    const a = await probe.attempt({});
    probe.close();
    expect(a).toMatchObject({ failure: 'the driver probe exited with code 1 while Dawn started these drivers' });
    expect(a.nativeOutput).toMatch(/Cannot find module/);
  });
});

describe('nativeMessages (what the Vulkan loader, its layers and Dawn print)', () => {
  it('keeps one line per message, without continuation lines, severity prefixes, control characters or repeats', () => {
    const out = 'error: XDG_RUNTIME_DIR is invalid\nerror: XDG_RUNTIME_DIR is invalid\nWarning: Vulkan x required.\n - While initializing adapter\n    at InitializeImpl (x.cpp:1)\n\nError: Loader Message: \u001b[31mno GPUs\u202e\n';
    expect(nativeMessages(out)).toEqual(['XDG_RUNTIME_DIR is invalid', 'Vulkan x required.', 'Loader Message: ?[31mno GPUs?']);
    expect(nativeMessages(Array.from({ length: 10 }, (_, i) => `m${i}`).join('\n'), 3)).toEqual(['m0', 'm1', 'm2']);
    expect(nativeMessages(`${'x'.repeat(400)}\n`)[0]).toHaveLength(301);
  });
});
