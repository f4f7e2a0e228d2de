/**
 * Hostile strings and patterns in input files. Tensor names and config strings carrying escape
 * sequences, newlines and bidi overrides never reach the terminal raw, in human output, error
 * messages or --json (which still parses back to the original strings); regexes that backtrack
 * catastrophically in a backtracking engine answer at once, and backreferences get a clear error.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

/** Clears the screen, then a bidi override, then a forged line. */
const EVIL = '\x1b[2J\u202eevil\r\nlorafuse: verified\u2066\x9b';
/** What a terminal acts on: C0 controls but newline, DEL, C1, bidi marks/embeddings/overrides/isolates, U+2028/9. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** In human output a newline of a value is escaped too: no line of ours says "lorafuse: verified". */
const FORGED_LINE = /^lorafuse: verified/m;

let work: string;
let baseDir: string;
let evilBase: string;
let adapterDir: string;
let evilAdapter: string;
const evilTensor = `transformer.h.0.${EVIL}.weight`;
const evilArchitecture = `GPT2LMHeadModel${EVIL}`;
const evilBaseModel = `gpt2${EVIL}`;
const evilLoraKey = `base_model.model.transformer.h.1.${EVIL}.lora_A.weight`;

function expectSafe(text: string): void {
  expect(text).not.toMatch(RAW_CONTROL);
  expect(text).not.toMatch(FORGED_LINE);
}

beforeAll(async () => {
  work = await tempDir('lorafuse-hostile-text-');
  const base = await makeGpt2Checkpoint({ seed: 3 });
  baseDir = await writeDir(join(work, 'base'), base.files);
  evilBase = await writeDir(join(work, 'evil-base'), {
    'config.json': JSON.stringify({ ...base.config, architectures: [evilArchitecture] }),
    'model.safetensors': await safetensorsBytes([...base.tensors, { name: evilTensor, shape: [2], values: Float32Array.of(1, 2) }]),
  });
  const modules = gpt2LoraModules(16, [0], ['attn.c_attn'], 4);
  adapterDir = await writeDir(join(work, 'adapter'), (await makeLoraAdapter({ seed: 4, modules })).files);
  const evil = await makeLoraAdapter({
    seed: 4,
    modules,
    config: { base_model_name_or_path: evilBaseModel, target_modules: ['c_attn', `x${EVIL}`] },
    extraTensors: [{ name: evilLoraKey.replace('base_model.model.', ''), shape: [4, 16], values: new Float32Array(64) }],
  });
  evilAdapter = await writeDir(join(work, 'evil-adapter'), evil.files);
}, 60_000);
afterAll(async () => {
  await removeDir(work);
});

describe('control and bidi characters from input files are escaped on output', () => {
  it('inspect: tensor names and config strings, human and --json', async () => {
    const human = await runLorafuse(['inspect', evilBase]);
    expect(human.code, human.stderr).toBe(0);
    expectSafe(human.stdout);
    expect(human.stdout).toContain('transformer.h.0.\\x1b[2J\\u202eevil\\r\\nlorafuse: verified\\u2066\\x9b.weight');
    const json = await runLorafuse(['inspect', evilBase, '--json']);
    expect(json.code).toBe(0);
    expectSafe(json.stdout.replace(/\n/g, ''));
    const doc = JSON.parse(json.stdout) as { tensors: Array<{ name: string }>; config: { architectures: string[] } };
    expect(doc.tensors.map((t) => t.name)).toContain(evilTensor);
    expect(doc.config.architectures).toEqual([evilArchitecture]);

    const adapter = await runLorafuse(['inspect', evilAdapter]);
    expectSafe(adapter.stdout + adapter.stderr);
    const adapterJson = JSON.parse((await runLorafuse(['inspect', evilAdapter, '--json'])).stdout) as { config: { base_model_name_or_path: string } };
    expect(adapterJson.config.base_model_name_or_path).toBe(evilBaseModel);
  });

  it('doctor: findings quoting a hostile key and a hostile target name, human and --json', async () => {
    const human = await runLorafuse(['doctor', baseDir, evilAdapter]);
    expect(human.code).toBe(2);
    expectSafe(human.stdout + human.stderr);
    expect(human.stdout).toContain('transformer.h.1.\\x1b[2J\\u202eevil');
    const json = await runLorafuse(['doctor', baseDir, evilAdapter, '--json']);
    expectSafe(json.stdout.replace(/\n/g, ''));
    const doc = JSON.parse(json.stdout) as { findings: Array<{ message: string }> };
    expect(doc.findings.some((f) => f.message.includes(`transformer.h.1.${EVIL}`))).toBe(true);
  });

  it('diff: a key only on one side, human and --json', async () => {
    const human = await runLorafuse(['diff', evilBase, baseDir, '--device', 'cpu']);
    expect(human.code).toBe(1);
    expectSafe(human.stdout + human.stderr);
    expect(human.stdout).toContain('only in a: transformer.h.0.\\x1b[2J');
    const json = await runLorafuse(['diff', evilBase, baseDir, '--device', 'cpu', '--json']);
    expectSafe(json.stdout.replace(/\n/g, ''));
    expect((JSON.parse(json.stdout) as { diff: { onlyInA: Array<{ name: string }> } }).diff.onlyInA.map((k) => k.name)).toEqual([evilTensor]);
  });

  it('an error message naming a hostile adapter key (merge), on stderr and in --json', async () => {
    const human = await runLorafuse(['merge', baseDir, evilAdapter, '--out', join(work, 'out-evil'), '--device', 'cpu']);
    expect(human.code).toBe(2);
    expectSafe(human.stdout + human.stderr);
    expect(human.stderr).toMatch(/^lorafuse: error: .*"base_model\.model\.transformer\.h\.1\.\\x1b\[2J\\u202eevil\\r\\nlorafuse: verified\\u2066\\x9b\.lora_A\.weight"/m);
    const json = await runLorafuse(['merge', baseDir, evilAdapter, '--out', join(work, 'out-evil'), '--device', 'cpu', '--json']);
    expectSafe(json.stdout.replace(/\n/g, '') + json.stderr);
    expect((JSON.parse(json.stdout) as { error: { message: string } }).error.message).toContain(`transformer.h.1.${EVIL}`);
  });

  it('a hostile path and an unknown command name are escaped too', async () => {
    const missing = await runLorafuse(['inspect', join(work, `nope${EVIL}`)]);
    expect(missing.code).toBe(2);
    expectSafe(missing.stderr);
    const unknown = await runLorafuse([`x${EVIL}`]);
    expect(unknown.code).toBe(2);
    expectSafe(unknown.stderr);
  });
});

/** A child that ran past this was hanging in a backtracking regex. */
const PROMPT_MS = 20_000;
/** Fails fast in RE2; a backtracking engine tries about 2^27 ways on a GPT-2 module path. */
const BACKTRACKER = '([a-z_.0-9]+)+!';

async function promptly(args: string[]) {
  const started = Date.now();
  const r = await runLorafuse(args, {}, PROMPT_MS);
  expect(Date.now() - started, `${args.join(' ')} hung`).toBeLessThan(PROMPT_MS);
  return r;
}

describe('adapter_config.json regexes are matched in linear time', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(work, 'patterns');
    const modules = gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 4);
    const write = async (name: string, config: Record<string, unknown>) => writeDir(join(dir, name), (await makeLoraAdapter({ seed: 5, modules, config })).files);
    await write('rank-alpha', { target_modules: ['c_attn', 'c_fc'], rank_pattern: { [BACKTRACKER]: 2, c_fc: 4 }, alpha_pattern: { [BACKTRACKER]: 3 } });
    await write('targets', { target_modules: BACKTRACKER });
    await write('backref', { target_modules: '(c_attn)\\1' });
    await write('lookahead', { rank_pattern: { '(?=transformer).*c_fc': 4 } });
  });

  it('rank_pattern / alpha_pattern keys that backtrack catastrophically: merge, verify and doctor finish at once', async () => {
    const out = join(dir, 'out');
    const merged = await promptly(['merge', baseDir, join(dir, 'rank-alpha'), '--out', out, '--device', 'cpu']);
    expect(merged.code, merged.stderr).toBe(0);
    const verified = await promptly(['verify', out, '--base', baseDir, '--adapter', join(dir, 'rank-alpha')]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect((await promptly(['doctor', baseDir, join(dir, 'rank-alpha')])).code).toBe(0);
  });

  it('a target_modules regex that backtracks catastrophically: doctor and merge report it matches nothing, at once', async () => {
    const doctor = await promptly(['doctor', baseDir, join(dir, 'targets')]);
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toContain('TARGETS_MATCH_NOTHING');
    const merge = await promptly(['merge', baseDir, join(dir, 'targets'), '--out', join(dir, 'out-targets'), '--device', 'cpu']);
    expect(merge.code).toBe(2);
    expect(merge.stderr).toContain('target_modules');
  });

  it('backreferences and lookaround: exit 2 naming the field, the pattern and why', async () => {
    for (const [name, field, pattern] of [['backref', 'target_modules', '(c_attn)\\1'], ['lookahead', 'rank_pattern.(?=transformer).*c_fc', '(?=transformer).*c_fc']] as const) {
      for (const args of [
        ['merge', baseDir, join(dir, name), '--out', join(dir, `out-${name}`), '--device', 'cpu'],
        ['verify', baseDir, '--base', baseDir, '--adapter', join(dir, name)],
      ]) {
        const r = await promptly(args);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`field "${field}" has the pattern ${JSON.stringify(pattern)}`);
        expect(r.stderr).toContain('lorafuse matches patterns in linear time and cannot take backreferences/lookaround');
        expect(r.stderr).not.toContain('bug');
      }
      const doctor = await promptly(['doctor', baseDir, join(dir, name), '--json']);
      expect(doctor.code).toBe(2);
      expect((JSON.parse(doctor.stdout) as { findings: Array<{ code: string; subject?: string }> }).findings).toContainEqual(expect.objectContaining({ code: 'ADAPTER_PATTERN_UNSUPPORTED', subject: field }));
    }
  });
});
