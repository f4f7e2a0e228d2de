import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { parseAdapterConfig } from './adapter-config.js';

const parse = (obj: unknown) => parseAdapterConfig(JSON.stringify(obj), 'adapter_config.json');

function expectInputError(fn: () => unknown, code: string, text: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).code).toBe(code);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error('expected an InputError');
}

describe('parseAdapterConfig', () => {
  it("applies PEFT's defaults for missing fields", () => {
    const c = parse({});
    expect(c).toMatchObject({ r: 8, loraAlpha: 8, useRslora: false, bias: 'none', targetModules: null, modulesToSave: null, rankPattern: [], alphaPattern: [] });
  });
  it('keeps pattern keys in file order and accepts float alpha and regex targets', () => {
    const c = parse({ r: 4, lora_alpha: 12.5, target_modules: '.*\\.h\\.1\\..*c_attn', rank_pattern: { b: 2, a: 3 } });
    expect(c.loraAlpha).toBe(12.5);
    expect(c.targetModules).toBe('.*\\.h\\.1\\..*c_attn');
    expect(c.rankPattern.map(([k]) => k)).toEqual(['b', 'a']);
  });
  it('refuses non-LoRA adapters naming the type', () => {
    expectInputError(() => parse({ peft_type: 'IA3' }), 'ADAPTER_UNSUPPORTED', /unsupported: IA3/);
  });
  it('refuses variants and base-mutating initialisations by name', () => {
    expectInputError(() => parse({ layer_replication: [[0, 1]] }), 'ADAPTER_UNSUPPORTED', /layer_replication/);
    expectInputError(() => parse({ use_qalora: true }), 'ADAPTER_UNSUPPORTED', /use_qalora/);
    expectInputError(() => parse({ init_lora_weights: 'loftq' }), 'ADAPTER_UNSUPPORTED', /quantised base/);
    expectInputError(() => parse({ alora_invocation_tokens: [5] }), 'ADAPTER_UNSUPPORTED', /invocation tokens/);
  });
  it('refuses unconverted PiSSA/OLoRA/CorDA/LoRA-GA adapters, saying how to convert them', () => {
    for (const init of ['pissa', 'pissa_niter_4', 'olora', 'corda', 'lora_ga']) {
      try {
        parse({ init_lora_weights: init });
        throw new Error(`${init} was accepted`);
      } catch (e) {
        expect(e).toMatchObject({ code: 'ADAPTER_NEEDS_CONVERSION', subject: 'init_lora_weights' });
        expect((e as InputError).hint).toMatch(/path_initial_model_for_weight_conversion="<init-dir>"/);
        expect((e as InputError).hint).toMatch(/init_lora_weights = True/);
      }
    }
  });
  it('accepts initialisations that leave the base alone (MiCA, gaussian, orthogonal, eva) and reads target_parameters', () => {
    for (const init of ['mica', 'gaussian', 'orthogonal', 'eva', false]) expect(parse({ init_lora_weights: init }).initLoraWeights).toBe(init);
    expect(parse({ target_parameters: ['attn.c_attn.weight'] }).targetParameters).toEqual(['attn.c_attn.weight']);
    expect(parse({ target_parameters: [] }).targetParameters).toBeNull();
    expectInputError(() => parse({ use_qalora: true }), 'ADAPTER_UNSUPPORTED', /use_qalora/);
  });
  it('names the field with a wrong type', () => {
    expectInputError(() => parse({ r: 'eight' }), 'ADAPTER_CONFIG_FIELD', /"r" must be a number/);
    expectInputError(() => parse({ r: 2.5 }), 'ADAPTER_CONFIG_FIELD', /"r" must be an integer/);
    expectInputError(() => parse({ target_modules: [1, 2] }), 'ADAPTER_CONFIG_FIELD', /"target_modules"/);
    expectInputError(() => parse({ rank_pattern: { c_fc: 0 } }), 'ADAPTER_CONFIG_FIELD', /rank_pattern.c_fc/);
    expectInputError(() => parse({ bias: 'some' }), 'ADAPTER_CONFIG_FIELD', /"bias"/);
  });
  it('rejects text that is not a JSON object', () => {
    expectInputError(() => parseAdapterConfig('{', 'x/adapter_config.json'), 'ADAPTER_CONFIG_JSON', /x\/adapter_config.json is not valid JSON/);
    expectInputError(() => parseAdapterConfig('[]', 'a.json'), 'ADAPTER_CONFIG_JSON', /JSON object/);
  });
});
