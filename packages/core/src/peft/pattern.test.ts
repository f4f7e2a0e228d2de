import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { parseAdapterConfig } from './adapter-config.js';
import { findPatternKey } from './lora-math.js';
import { checkConfigPattern, fullMatches, layerIndexAfter, patternKeyMatches } from './pattern.js';

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

/** A module name that makes a backtracking engine take exponential time on `(a+)+$`-style patterns. */
const LONG = `${'a'.repeat(40_000)}!`;

describe('config patterns (linear-time matching)', () => {
  it('full-matches target_modules strings as PEFT does (re.fullmatch)', () => {
    expect(fullMatches('.*\\.h\\.1\\..*c_attn', 'transformer.h.1.attn.c_attn')).toBe(true);
    expect(fullMatches('.*\\.h\\.1\\..*c_attn', 'transformer.h.11.attn.c_attn')).toBe(false);
    expect(fullMatches('c_attn', 'transformer.h.1.attn.c_attn')).toBe(false);
    expect(fullMatches('a|b', 'a')).toBe(true);
    expect(fullMatches('a|b', 'ab')).toBe(false);
  });

  it('matches rank/alpha pattern keys at a dot boundary to the end, "^" anchoring at the start', () => {
    expect(patternKeyMatches('c_fc', 'transformer.h.0.mlp.c_fc')).toBe(true);
    expect(patternKeyMatches('c_fc', 'transformer.h.0.mlp.xc_fc')).toBe(false);
    expect(patternKeyMatches('^transformer.h.1.mlp.c_proj', 'transformer.h.1.mlp.c_proj')).toBe(true);
    expect(patternKeyMatches('^h.1.mlp.c_proj', 'transformer.h.1.mlp.c_proj')).toBe(false);
  });

  it('reads the layer index after the first layers_pattern segment (group 1)', () => {
    expect(layerIndexAfter(null, 'transformer.h.3.attn.c_attn')).toBe(3);
    expect(layerIndexAfter('h', 'transformer.h.3.attn.c_attn')).toBe(3);
    expect(layerIndexAfter('layers', 'transformer.h.3.attn.c_attn')).toBeUndefined();
    expect(layerIndexAfter('h', 'transformer.h.3.attn.h.5.x')).toBe(3);
  });

  it('answers catastrophic-backtracking patterns at once', () => {
    const started = performance.now();
    expect(fullMatches('(a+)+$', LONG)).toBe(false);
    expect(fullMatches('(a|aa)+', LONG)).toBe(false);
    expect(patternKeyMatches('(a+)+$', LONG)).toBe(false);
    expect(findPatternKey(['(.*a){20}'], LONG)).toBeUndefined();
    expect(layerIndexAfter('(a+)+', `x.${LONG}.1.`)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('refuses backreferences and lookaround by field, pattern and reason', () => {
    for (const [config, field, pattern] of [
      [{ target_modules: '(c_attn)\\1' }, 'target_modules', '(c_attn)\\1'],
      [{ exclude_modules: '(?!c_attn).*' }, 'exclude_modules', '(?!c_attn).*'],
      [{ rank_pattern: { '(?<=mlp\\.)c_fc': 4 } }, 'rank_pattern.(?<=mlp\\.)c_fc', '(?<=mlp\\.)c_fc'],
      [{ alpha_pattern: { '(?P<x>h)\\.(?P=x)': 4 } }, 'alpha_pattern.(?P<x>h)\\.(?P=x)', '(?P<x>h)\\.(?P=x)'],
      [{ layers_pattern: ['h(?=\\.)'] }, 'layers_pattern', 'h(?=\\.)'],
    ] as const) {
      const e = inputError(() => parseAdapterConfig(JSON.stringify(config), '/x/adapter_config.json'));
      expect(e.code).toBe('ADAPTER_PATTERN_UNSUPPORTED');
      expect(e.subject).toBe(field);
      expect(e.message).toContain(`field "${field}"`);
      expect(e.message).toContain(JSON.stringify(pattern));
      expect(e.message).toContain('lorafuse matches patterns in linear time and cannot take backreferences/lookaround');
      expect(e.message).toContain('/x/adapter_config.json');
    }
  });

  it('names other syntax errors with the RE2 reason', () => {
    const e = inputError(() => checkConfigPattern('c_attn[', { field: 'target_modules', label: 'a.json' }));
    expect(e.code).toBe('ADAPTER_CONFIG_FIELD');
    expect(e.message).toMatch(/^a\.json: field "target_modules" is not a regular expression lorafuse can evaluate: "c_attn\[": missing closing \]/);
    // Python's named groups are RE2 syntax too.
    expect(() => checkConfigPattern('(?P<m>c_attn|c_proj)', { field: 'target_modules' })).not.toThrow();
  });
});
