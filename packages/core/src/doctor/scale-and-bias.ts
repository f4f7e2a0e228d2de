/**
 * Doctor checks on what changes a module's scale, layout or bias beyond `r` and `lora_alpha`: rsLoRA,
 * per-module patterns (which a tool that reads only `r`/`lora_alpha` gets wrong), `target_parameters`
 * (which a tool that reads only `target_modules` transposes), `lora_B.bias` tensors PEFT ignores, and
 * a `bias` setting that saved nothing.
 */
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import { parseAdapterKey } from '../peft/adapter-keys.js';
import { loraScale, moduleHyperparams } from '../peft/lora-math.js';
import type { Finding } from '../plan/types.js';
import type { SafetensorsHeader } from '../safetensors/header.js';

/** Findings about scales and biases, from the adapter's config and tensor names alone. */
export function scaleAndBiasFindings(cfg: LoraAdapterConfig, file: SafetensorsHeader): Finding[] {
  const findings: Finding[] = [];
  const keys = file.tensors.map((t) => ({ t, k: parseAdapterKey(t.name) }));
  const loraA = keys.filter(({ k }) => k.kind === 'lora_A' || k.kind === 'lora_embedding_A');

  if (cfg.useRslora) {
    findings.push({
      severity: 'info',
      code: 'RSLORA_SCALE',
      subject: 'use_rslora',
      message: `use_rslora is true: the scale is lora_alpha / sqrt(r) = ${loraScale(cfg.loraAlpha, cfg.r, true).toPrecision(4)}, not lora_alpha / r = ${loraScale(cfg.loraAlpha, cfg.r, false).toPrecision(4)}; a tool that reads only r and lora_alpha merges this adapter with the wrong scale`,
      fix: 'Nothing to do for lorafuse. Check any other tool you merge or serve it with (it must honour use_rslora).',
    });
  }
  // Modules whose rank or alpha a pattern changes: invisible to a tool that reads only r / lora_alpha.
  const patterned = loraA.flatMap(({ t, k }) => {
    if (!('modulePath' in k)) return [];
    const hp = moduleHyperparams(cfg, k.modulePath, t.shape[0] ?? cfg.r);
    return hp.alpha !== cfg.loraAlpha || hp.rank !== cfg.r ? [`${k.modulePath} (r=${hp.rank}, alpha=${hp.alpha})`] : [];
  });
  if (patterned.length > 0) {
    findings.push({
      severity: 'info',
      code: 'PER_MODULE_SCALE',
      subject: cfg.alphaPattern.length > 0 ? 'alpha_pattern' : 'rank_pattern',
      message: `${patterned.length} module(s) use a rank or alpha other than r=${cfg.r} / lora_alpha=${cfg.loraAlpha} (rank_pattern / alpha_pattern): ${patterned.slice(0, 4).join(', ')}${patterned.length > 4 ? ', …' : ''}; a tool that reads only r and lora_alpha merges them with the wrong scale`,
      fix: 'Nothing to do for lorafuse, which resolves the patterns per module as PEFT does.',
    });
  }

  if (cfg.targetParameters !== null) {
    findings.push({
      severity: 'info',
      code: 'TARGET_PARAMETERS',
      subject: 'target_parameters',
      message: `target_parameters ${JSON.stringify(cfg.targetParameters)}: PEFT adds scale·B·A to these parameters as stored, untransposed; their keys look like module LoRA keys, so a tool that reads only target_modules would transpose the Conv1D deltas (on the square attn.c_proj without any shape error)`,
      fix: 'Nothing to do for lorafuse, which follows target_parameters as PEFT does.',
    });
  }
  const loraBiasKeys = keys.filter(({ k }) => k.kind === 'lora_bias').map(({ t }) => t.name);
  if (loraBiasKeys.length > 0 && !cfg.loraBias) {
    findings.push({
      severity: 'warning',
      code: 'LORA_BIAS_IGNORED',
      subject: 'lora_bias',
      message: `the adapter stores ${loraBiasKeys.length} lora_B.bias tensor(s) (e.g. "${loraBiasKeys[0]}") but adapter_config.json says lora_bias: false: PEFT builds lora_B without a bias and ignores them, and so does lorafuse merge`,
      fix: 'If they were trained, set "lora_bias": true in adapter_config.json (or merge with --follow tensors).',
    });
  }
  const savedBiases = keys.filter(({ k }) => k.kind === 'replacement' && k.tensorPath.endsWith('.bias'));
  if (cfg.bias !== 'none' && savedBiases.length === 0) {
    findings.push({
      severity: 'info',
      code: 'BIAS_SAVED_NOTHING',
      subject: 'bias',
      message: `bias is "${cfg.bias}" but the adapter stores no bias tensors: PEFT's unmerged model keeps the base biases, and the merge keeps them too`,
      fix: 'If biases were trained, the adapter was saved without them; re-save it with PEFT from the trained model.',
    });
  }
  if (cfg.bias === 'none' && savedBiases.length > 0) {
    findings.push({
      severity: 'info',
      code: 'BIAS_SAVED_DESPITE_NONE',
      subject: 'bias',
      message: `bias is "none" but the adapter stores ${savedBiases.length} bias tensor(s) (e.g. "${savedBiases[0]!.t.name}"); PEFT loads them into the model, and the merge uses them`,
    });
  }
  return findings;
}
