/**
 * The one matcher for the regular expressions an `adapter_config.json` carries (`target_modules` and
 * `exclude_modules` as strings, `rank_pattern` / `alpha_pattern` keys, `layers_pattern`). They come
 * from a file anyone can write, so they run on a linear-time engine (RE2): a pattern such as `(a+)+$`
 * that backtracks for minutes in a backtracking engine answers at once here. RE2 has no
 * backreferences and no lookaround; a pattern using them is refused with an error naming the field.
 */
import { RE2JS } from 're2js';
import { InputError } from '../errors.js';

/** Compiled expressions by source; configs hold a handful of patterns, so the cache stays small. */
const compiled = new Map<string, RE2JS>();
const CACHE_LIMIT = 512;

/** Why RE2 refuses a pattern that Python's `re` would take, when that is the reason. */
function unsupportedFeature(pattern: string): string | undefined {
  if (/\\[1-9]|\\k<|\(\?P=/.test(pattern)) return 'a backreference';
  if (/\(\?<?[=!]/.test(pattern)) return 'lookaround';
  return undefined;
}

function compile(expression: string, pattern: string, field: string, label: string): RE2JS {
  const hit = compiled.get(expression);
  if (hit) return hit;
  let re: RE2JS;
  try {
    re = RE2JS.compile(expression);
  } catch (e) {
    throw patternError(pattern, field, label, e);
  }
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(expression, re);
  return re;
}

function patternError(pattern: string, field: string, label: string, cause: unknown): InputError {
  const feature = unsupportedFeature(pattern);
  const where = `${label}: field "${field}"`;
  if (feature !== undefined) {
    return new InputError('ADAPTER_PATTERN_UNSUPPORTED', `${where} has the pattern ${JSON.stringify(pattern)}, which uses ${feature}; lorafuse matches patterns in linear time and cannot take backreferences/lookaround`, {
      subject: field,
      hint: 'Rewrite the pattern without backreferences or lookaround (e.g. list the module names), or merge this adapter with PEFT itself.',
      cause,
    });
  }
  const detail = cause instanceof Error ? cause.message.replace(/^error parsing regexp: /, '') : String(cause);
  return new InputError('ADAPTER_CONFIG_FIELD', `${where} is not a regular expression lorafuse can evaluate: ${JSON.stringify(pattern)}: ${detail}`, {
    subject: field,
    hint: 'Fix the field or re-save the adapter with PEFT (`model.save_pretrained(dir)`).',
    cause,
  });
}

/** Where a pattern came from, for the error a pattern RE2 cannot take gets. */
export interface PatternOrigin {
  /** The field, e.g. `target_modules` or `rank_pattern.<key>`. */
  readonly field: string;
  /** The file, e.g. the adapter_config.json path. */
  readonly label?: string;
}

const DEFAULT_ORIGIN: PatternOrigin = { field: 'pattern' };

/**
 * Checks that `pattern` compiles in every form lorafuse matches it in; throws `InputError`
 * (`ADAPTER_PATTERN_UNSUPPORTED` for backreferences/lookaround, else `ADAPTER_CONFIG_FIELD`).
 */
export function checkConfigPattern(pattern: string, origin: PatternOrigin): void {
  compile(fullMatchExpression(pattern), pattern, origin.field, origin.label ?? 'adapter_config.json');
}

const fullMatchExpression = (pattern: string) => `^(?:${pattern})$`;

/** Python's `re.fullmatch(pattern, text)`: how PEFT matches a `target_modules` / `exclude_modules` string. */
export function fullMatches(pattern: string, text: string, origin: PatternOrigin = DEFAULT_ORIGIN): boolean {
  return compile(fullMatchExpression(pattern), pattern, origin.field, origin.label ?? 'adapter_config.json').test(text);
}

/**
 * PEFT's `get_pattern_key` test for one `rank_pattern` / `alpha_pattern` key: the key matches the end
 * of `modulePath` at a dot boundary, or all of it.
 */
export function patternKeyMatches(key: string, modulePath: string, origin: PatternOrigin = DEFAULT_ORIGIN): boolean {
  return compile(`^(?:.*\\.)?(?:${key})$`, key, origin.field, origin.label ?? 'adapter_config.json').test(modulePath);
}

/**
 * The layer index in `modulePath` after the first `.<layersPattern>.` (`transformer.h.3.attn.c_attn`
 * with `h` → 3); `layersPattern` null means any module name before the index.
 */
export function layerIndexAfter(layersPattern: string | null, modulePath: string, origin: PatternOrigin = { field: 'layers_pattern' }): number | undefined {
  const expression = layersPattern === null ? '^.*?\\.[^.]*\\.(\\d+)\\.' : `^.*?\\.${layersPattern}\\.(\\d+)\\.`;
  const m = compile(expression, layersPattern ?? '', origin.field, origin.label ?? 'adapter_config.json').exec(modulePath);
  // Group 1, as PEFT reads it (`int(match.group(1))`).
  return m ? Number(m[1]) : undefined;
}
