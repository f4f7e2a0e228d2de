import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerError } from './errors.js';
import { chromiumVersion, findChromium } from './find-chromium.js';

let dir: string;
let fakeChrome: string;
let notExecutable: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorafuse-find-chromium-'));
  fakeChrome = join(dir, 'chrome');
  await writeFile(fakeChrome, '#!/bin/sh\necho "noise" >&2\necho "Chromium 123.0.4567.89 fake"\n');
  await chmod(fakeChrome, 0o755);
  notExecutable = join(dir, 'plain');
  await writeFile(notExecutable, 'x');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('findChromium', () => {
  it('takes CHROME_PATH first', () => {
    expect(findChromium({ CHROME_PATH: fakeChrome }, ['/usr/bin/chromium'])).toEqual({ path: fakeChrome, source: 'CHROME_PATH' });
  });

  it('CHROME_PATH that is not an executable file is an error, not a fallback', () => {
    for (const bad of [notExecutable, dir, join(dir, 'missing')]) {
      const err = (() => {
        try {
          findChromium({ CHROME_PATH: bad }, [fakeChrome]);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(RunnerError);
      expect((err as RunnerError).code).toBe('BROWSER_NOT_FOUND');
      expect((err as RunnerError).kind).toBe('environment');
      expect((err as RunnerError).message).toContain('CHROME_PATH');
      expect((err as RunnerError).hint).toContain('apt-get install chromium');
    }
  });

  it('searches the candidates in order when CHROME_PATH is unset or empty', () => {
    expect(findChromium({}, [join(dir, 'missing'), notExecutable, fakeChrome])).toEqual({ path: fakeChrome, source: 'known-path' });
    expect(findChromium({ CHROME_PATH: '' }, [fakeChrome]).source).toBe('known-path');
  });

  it('BROWSER_NOT_FOUND with install instructions when nothing is found', () => {
    expect(() => findChromium({}, [join(dir, 'missing')])).toThrow(RunnerError);
    try {
      findChromium({}, []);
    } catch (e) {
      const err = e as RunnerError;
      expect(err.code).toBe('BROWSER_NOT_FOUND');
      expect(err.hint).toMatch(/apt-get install chromium/);
      expect(err.hint).toMatch(/CHROME_PATH/);
      expect(err.toJSON()).toMatchObject({ code: 'BROWSER_NOT_FOUND', kind: 'environment' });
    }
  });

  it.runIf(existsSync('/usr/bin/chromium'))('finds the system Chromium by default', () => {
    const env = { ...process.env };
    delete env['CHROME_PATH'];
    expect(findChromium(env).path).toMatch(/chrom/i);
  });
});

describe('chromiumVersion', () => {
  it('reads the first stdout line of --version', async () => {
    expect(await chromiumVersion(fakeChrome)).toBe('Chromium 123.0.4567.89 fake');
  });
  it('BROWSER_LAUNCH_FAILED for something that does not run', async () => {
    await expect(chromiumVersion(notExecutable)).rejects.toMatchObject({ code: 'BROWSER_LAUNCH_FAILED' });
  });
});
