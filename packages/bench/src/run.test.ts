/** bench/run: the command line, the xl section and its size, and when the README is rewritten. */
import { describe, expect, it } from 'vitest';
import { BENCH_SECTIONS, parseBenchArgs } from './run.js';

describe('parseBenchArgs', () => {
  it('runs every section, the xl one at the real 48 layers, and rewrites the README only for such a run', () => {
    const all = parseBenchArgs([], {});
    expect([...all.only]).toEqual([...BENCH_SECTIONS]);
    expect(all.only.has('xl')).toBe(true);
    expect(all.xlLayers).toBe(48);
    expect(all.updateReadme).toBe(true);
    expect(parseBenchArgs(['--xl-layers', '4'], {}).updateReadme).toBe(false);
    expect(parseBenchArgs(['--only', 'kernels,transfers,e2e'], {}).updateReadme).toBe(false);
  });

  it('takes --only xl and --xl-layers in both spellings, and refuses what is not a positive integer', () => {
    const xl = parseBenchArgs(['--only', 'xl', '--xl-layers=3'], {});
    expect([...xl.only]).toEqual(['xl']);
    expect(xl.xlLayers).toBe(3);
    for (const bad of ['0', '-1', '2.5', 'many']) expect(() => parseBenchArgs(['--xl-layers', bad], {})).toThrow(/--xl-layers must be a positive integer/);
    expect(() => parseBenchArgs(['--only', 'xxl'], {})).toThrow(/unknown section xxl/);
  });
});
