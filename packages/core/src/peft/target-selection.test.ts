import { describe, expect, it } from 'vitest';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { layerIndexOf, matchesTargets, selectLoraTargets } from './target-selection.js';

describe('target_modules selection (PEFT check_target_module_exists)', () => {
  it('full-matches a regex string, suffix-matches list entries, reads the layer index', () => {
    expect(matchesTargets('.*c_(attn|proj)', 'transformer.h.0.attn.c_proj')).toBe(true);
    expect(matchesTargets('c_proj', 'transformer.h.0.attn.c_proj')).toBe(false);
    expect(matchesTargets(['c_proj'], 'transformer.h.0.attn.c_proj')).toBe(true);
    expect(layerIndexOf('transformer.h.7.mlp.c_fc', ['blocks', 'h'])).toBe(7);
    expect(layerIndexOf('transformer.h.7.mlp.c_fc', null)).toBe(7);
  });

  it('answers catastrophic-backtracking target_modules / exclude_modules at once', () => {
    const long = `${'a'.repeat(40_000)}!`;
    const started = performance.now();
    const config = parseAdapterConfig(JSON.stringify({ target_modules: '(a+)+$', exclude_modules: '(a|a)*b' }));
    expect(selectLoraTargets(config, [long, 'transformer.h.0.attn.c_attn'])).toEqual([]);
    const listed = parseAdapterConfig(JSON.stringify({ target_modules: ['c_attn'], exclude_modules: '(.*a){25}', layers_to_transform: [0], layers_pattern: '(a+)+h' }));
    expect(selectLoraTargets(listed, [`${long}.c_attn`, 'transformer.h.0.attn.c_attn'])).toEqual([]);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
