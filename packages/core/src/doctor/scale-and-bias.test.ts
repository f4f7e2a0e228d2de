import { describe, expect, it } from 'vitest';
import { memorySource } from '../io.js';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { readSafetensorsHeader } from '../safetensors/header.js';
import { gpt2LoraModules, makeLoraAdapter, type AdapterFixtureOptions } from '../testing/fixtures.js';
import { scaleAndBiasFindings } from './scale-and-bias.js';

async function findings(options: AdapterFixtureOptions) {
  const a = await makeLoraAdapter(options);
  const file = await readSafetensorsHeader(memorySource('adapter_model.safetensors', a.files['adapter_model.safetensors']!));
  return scaleAndBiasFindings(parseAdapterConfig(new TextDecoder().decode(a.files['adapter_config.json'])), file);
}
const codes = (f: Awaited<ReturnType<typeof findings>>) => f.map((x) => x.code);

describe('scaleAndBiasFindings', () => {
  it('says rsLoRA and per-module patterns change the scale a tool reading only r / lora_alpha would use', async () => {
    const f = await findings({ modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], (m) => (m.includes('h.1') ? 6 : 4)), config: { r: 4, lora_alpha: 8, use_rslora: true, rank_pattern: { 'h.1.attn.c_attn': 6 } } });
    expect(f.find((x) => x.code === 'RSLORA_SCALE')?.message).toMatch(/sqrt\(r\) = 4\.000, not lora_alpha \/ r = 2\.000/);
    expect(f.find((x) => x.code === 'PER_MODULE_SCALE')?.message).toMatch(/1 module\(s\).*transformer\.h\.1\.attn\.c_attn \(r=6, alpha=8\)/);
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8) }))).toEqual([]);
    const tp = await findings({ modules: [{ module: 'transformer.h.0.attn.c_proj', inFeatures: 16, outFeatures: 16, rank: 8 }], config: { target_modules: [], target_parameters: ['attn.c_proj.weight'] } });
    expect(tp.find((x) => x.code === 'TARGET_PARAMETERS')?.message).toMatch(/would transpose the Conv1D deltas/);
  });

  it('reports lora_B biases PEFT ignores, and a bias setting that saved nothing', async () => {
    const lb = { name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: new Float32Array(48) };
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8), extraTensors: [lb] }))).toEqual(['LORA_BIAS_IGNORED']);
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8), config: { lora_bias: true }, extraTensors: [lb] }))).toEqual([]);
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8), config: { bias: 'lora_only' } }))).toEqual(['BIAS_SAVED_NOTHING']);
    const saved = { name: 'transformer.h.0.attn.c_attn.base_layer.bias', shape: [48], values: new Float32Array(48) };
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8), config: { bias: 'all' }, extraTensors: [saved] }))).toEqual([]);
    expect(codes(await findings({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8), extraTensors: [saved] }))).toEqual(['BIAS_SAVED_DESPITE_NONE']);
  });
});
