import { describe, expect, it } from 'vitest';
import { parseIds } from './model-inputs.js';

describe('parseIds', () => {
  it('reads comma-separated ids, spaces allowed', () => {
    expect(parseIds('logits', '464, 3290,318')).toEqual([464, 3290, 318]);
  });

  it('names the bad item and where it is', () => {
    expect(() => parseIds('logits', '1,,2')).toThrow('lorafuse logits: --ids must be comma-separated non-negative integers, got "" (item 2 of "1,,2")');
    expect(() => parseIds('generate', '1.5')).toThrow('lorafuse generate: --ids must be comma-separated non-negative integers, got "1.5"');
    expect(() => parseIds('logits', '')).toThrow(/got ""$/);
  });
});
