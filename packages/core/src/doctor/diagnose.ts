/**
 * `lorafuse doctor`: the misconfigurations that make a merged GPT-2 misbehave (targets that match
 * nothing, a module both LoRA-targeted and saved whole, one side of the tied pair trained, a resized
 * vocabulary without its weights, DoRA tensors that disagree with use_dora, a different base), each a finding with a severity and a fix.
 * Pure: configs, headers and the plan in, findings out. `merge` runs the same checks on its one plan
 * and stops on errors.
 */
import { architectureOf, canonicalName, moduleKind, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { parseAdapterKey } from '../peft/adapter-keys.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import { tryPlanMerge, type PlanOutcome } from '../plan/plan-merge.js';
import type { AdapterInput, Finding } from '../plan/types.js';
import { LorafuseError } from '../errors.js';
import { matchesTargets } from '../peft/target-selection.js';
import { GPT2_EQUIVALENTS, modelNameOf } from './gpt2-equivalents.js';
import { scaleAndBiasFindings } from './scale-and-bias.js';

/** Inputs of `diagnose`. */
export interface DoctorInput {
  readonly base: { readonly label: string; readonly config: Record<string, unknown>; readonly files: readonly SafetensorsHeader[] };
  /** The adapters, in merge order (each checked on its own; the tied pair on their combined effect). */
  readonly adapters: readonly AdapterInput[];
}

/** Leaf module paths of the base model (canonical), as PEFT would see them in `named_modules()`. */
export function baseModulePaths(config: Record<string, unknown>, files: readonly SafetensorsHeader[]): string[] {
  const modules = new Set<string>();
  for (const h of files) for (const t of h.tensors) {
    const c = canonicalName(t.name);
    if (/\.(weight|bias)$/.test(c)) modules.add(c.replace(/\.(weight|bias)$/, ''));
  }
  const arch = architectureOf(config);
  if (arch === 'GPT2LMHeadModel' || arch === 'GPT2DoubleHeadsModel') modules.add('lm_head');
  return [...modules].sort();
}

function suggestionFor(name: string): string | undefined {
  const leaf = name.split('.').pop() ?? name;
  return GPT2_EQUIVALENTS[leaf];
}

/**
 * Runs every check; never throws for bad input (that becomes an error finding). `planned` is the
 * plan of these inputs, or the error that refused it (planned here when the caller has none).
 */
export function diagnose(input: DoctorInput, planned: PlanOutcome = tryPlanMerge(input)): Finding[] {
  const findings: Finding[] = [];
  const { base } = input;
  const modules = baseModulePaths(base.config, base.files);
  const touched = { wte: [] as string[], lmHead: [] as string[] };
  const several = input.adapters.length > 1;
  for (const adapter of input.adapters) {
    const own = [...adapterFindings(base, adapter, modules, touched), ...doraFindings(adapter)];
    findings.push(...(several ? own.map((f) => ({ ...f, message: `${adapter.label}: ${f.message}` })) : own));
  }

  const stored = new Set(base.files.flatMap((h) => h.tensors.map((t) => canonicalName(t.name))));
  const baseTied = base.config['tie_word_embeddings'] !== false && !stored.has(TIED_OUTPUT_WEIGHT);
  if (baseTied && (touched.wte.length > 0) !== (touched.lmHead.length > 0)) {
    const side = touched.wte.length > 0 ? 'wte (input embedding)' : 'lm_head (output head)';
    const changes = [...touched.wte, ...touched.lmHead];
    const how = changes.includes('LoRA') ? 'LoRA' : changes[0];
    findings.push({
      severity: 'warning',
      code: 'ONE_SIDE_OF_TIE_TRAINED',
      subject: touched.wte.length > 0 ? TIED_INPUT_WEIGHT : TIED_OUTPUT_WEIGHT,
      message: `the base ties lm_head to wte, but the ${several ? 'adapters train' : 'adapter trains'} only ${side} (${how}): the two uses now differ, so the merged model must be untied (PEFT's merge_and_unload ${how === 'LoRA' ? 'adds the delta to the shared matrix, changing both uses' : 'unties only in PEFT >= 0.19'})`,
      fix: 'lorafuse merge unties it (stores both, tie_word_embeddings: false). If both uses were meant to change together, train with ensure_weight_tying=True.',
    });
  }

  // Everything the planner refuses is an error here too (once: a DoRA refusal is reported above);
  // several adapters on one module are fine (their deltas add up, whatever their ranks), which the
  // plan notes.
  if (planned instanceof LorafuseError) {
    if (findings.some((f) => f.code === planned.code)) return findings;
    findings.push({ severity: 'error', code: planned.code, message: planned.message, ...(planned.hint ? { fix: planned.hint } : {}), ...(planned.subject ? { subject: planned.subject } : {}) });
  } else {
    findings.push(...planned.findings.filter((f) => f.code === 'ADAPTERS_SHARE_MODULE'));
  }
  return findings;
}

/** The checks of one adapter against the base; what it does to the tied pair goes into `touched`. */
function adapterFindings(base: DoctorInput['base'], adapter: AdapterInput, modules: readonly string[], touched: { wte: string[]; lmHead: string[] }): Finding[] {
  const findings: Finding[] = [];
  const cfg = adapter.config;

  // target_modules that match nothing in GPT-2, or only partly.
  const targets = cfg.targetModules;
  if (targets === null) {
    findings.push({ severity: 'info', code: 'TARGETS_DEFAULT', subject: 'target_modules', message: 'target_modules is null: PEFT uses its GPT-2 default, ["c_attn"]' });
  } else if (typeof targets === 'string') {
    if (targets.toLowerCase() !== 'all-linear' && !modules.some((m) => matchesTargets(targets, m))) {
      findings.push({
        severity: 'error',
        code: 'TARGETS_MATCH_NOTHING',
        subject: 'target_modules',
        message: `target_modules regex ${JSON.stringify(targets)} matches no module of this GPT-2 (it must match the whole path, e.g. "transformer.h.0.attn.c_attn")`,
        fix: 'Use a regex over GPT-2 module paths such as ".*\\.c_attn", or a list like ["c_attn"].',
      });
    }
  } else {
    const unmatched = targets.filter((t) => !modules.some((m) => m === t || m.endsWith(`.${t}`)));
    const suggestions = [...new Set(unmatched.map(suggestionFor).filter((s): s is string => s !== undefined))];
    const suggestText = suggestions.length > 0 ? `; GPT-2's equivalent${suggestions.length > 1 ? 's are' : ' is'} ${suggestions.map((s) => `"${s}"`).join(', ')}` : '';
    if (unmatched.length > 0 && unmatched.length === targets.length) {
      findings.push({
        severity: 'error',
        code: 'TARGETS_MATCH_NOTHING',
        subject: 'target_modules',
        message: `target_modules ${JSON.stringify(targets)} match no module of GPT-2${suggestText}`,
        fix: `Train with GPT-2 module names, e.g. target_modules=["${suggestions[0] ?? 'c_attn'}"] (GPT-2 has c_attn, c_proj, c_fc, wte, lm_head).`,
      });
    } else if (unmatched.length > 0) {
      findings.push({
        severity: 'warning',
        code: 'TARGETS_PARTLY_UNMATCHED',
        subject: 'target_modules',
        message: `target_modules ${JSON.stringify(unmatched)} match nothing in GPT-2; PEFT ignored them because other names matched${suggestText}`,
        fix: 'Remove them from target_modules (they had no effect on training).',
      });
    }
  }

  // A module in both target_modules and modules_to_save: PEFT trains it fully, not with LoRA.
  if (cfg.modulesToSave && typeof targets !== 'string' && targets !== null) {
    const both = cfg.modulesToSave.filter((m) => targets.includes(m));
    if (both.length > 0) {
      findings.push({
        severity: 'warning',
        code: 'MODULE_IN_BOTH',
        subject: both.join(', '),
        message: `${both.map((b) => `"${b}"`).join(', ')} ${both.length > 1 ? 'are' : 'is'} in both target_modules and modules_to_save: PEFT trains ${both.length > 1 ? 'them' : 'it'} fully and applies no LoRA there`,
        fix: 'List each module in only one of the two.',
      });
    }
  }

  // What the adapter's tensors touch of the tied pair, and vocabulary sizes.
  let wteRows: number | undefined;
  let lmHeadRows: number | undefined;
  let embeddingLoraRows: number | undefined;
  let lmHeadLoraRows: number | undefined;
  for (const t of adapter.file.tensors) {
    const k = parseAdapterKey(t.name);
    if (k.kind === 'replacement') {
      const c = canonicalName(k.tensorPath);
      if (c === TIED_INPUT_WEIGHT) {
        touched.wte.push(k.fromBaseLayer ? 'saved base_layer' : 'full tensor');
        wteRows = t.shape[0];
      }
      if (c === TIED_OUTPUT_WEIGHT) {
        touched.lmHead.push(k.fromBaseLayer ? 'saved base_layer' : 'full tensor');
        lmHeadRows = t.shape[0];
      }
    } else if (k.kind === 'trainable_tokens') {
      // PEFT ties a tied model's output head to the same token rows: both uses change alike.
      continue;
    } else if ('modulePath' in k) {
      const c = `${canonicalName(k.modulePath)}.weight`;
      if (c === TIED_INPUT_WEIGHT) {
        touched.wte.push('LoRA');
        if (k.kind === 'lora_embedding_A') embeddingLoraRows = t.shape[1];
      }
      if (c === TIED_OUTPUT_WEIGHT) {
        touched.lmHead.push('LoRA');
        if (k.kind === 'lora_B') lmHeadLoraRows = t.shape[0];
      }
    }
  }
  const stored = new Set(base.files.flatMap((h) => h.tensors.map((t) => canonicalName(t.name))));
  const baseTied = base.config['tie_word_embeddings'] !== false && !stored.has(TIED_OUTPUT_WEIGHT);
  const baseVocab = base.files.flatMap((h) => h.tensors).find((t) => canonicalName(t.name) === TIED_INPUT_WEIGHT)?.shape[0];
  const effWte = wteRows ?? baseVocab;
  const needRows = [embeddingLoraRows, lmHeadLoraRows].filter((r): r is number => r !== undefined);
  if (baseVocab !== undefined && needRows.some((r) => r !== baseVocab) && wteRows === undefined && lmHeadRows === undefined) {
    findings.push({
      severity: 'error',
      code: 'VOCAB_RESIZED_WITHOUT_EMBEDDINGS',
      subject: TIED_INPUT_WEIGHT,
      message: `the adapter's LoRA on the embeddings expects ${needRows.find((r) => r !== baseVocab)} vocabulary rows but the base has ${baseVocab}, and the adapter carries no resized wte/lm_head weights`,
      fix: 'The vocabulary was resized during training: save the adapter with save_embedding_layers=True (or modules_to_save=["wte", "lm_head"]), or merge into the resized base it was trained on.',
    });
  } else if (baseTied && effWte !== undefined && baseVocab !== undefined && effWte !== baseVocab && lmHeadRows === undefined) {
    findings.push({
      severity: 'error',
      code: 'VOCAB_RESIZED_WITHOUT_EMBEDDINGS',
      subject: TIED_OUTPUT_WEIGHT,
      message: `the adapter resizes wte to ${effWte} rows (base: ${baseVocab}) but carries no lm_head of that size; the tied output head cannot be reconstructed`,
      fix: 'Save the adapter with save_embedding_layers=True or modules_to_save=["wte", "lm_head"].',
    });
  }

  // fan_in_fan_out as saved says nothing for GPT-2.
  const convTargets = adapter.file.tensors.some((t) => {
    const k = parseAdapterKey(t.name);
    return k.kind === 'lora_A' && moduleKind(k.modulePath) === 'conv1d';
  });
  if (convTargets && !cfg.fanInFanOut) {
    findings.push({
      severity: 'info',
      code: 'FAN_IN_FAN_OUT_IGNORED',
      subject: 'fan_in_fan_out',
      message: 'fan_in_fan_out is false but the targets are GPT-2 Conv1D layers, for which PEFT forces it to true (and saves whatever the last layer set)',
      fix: 'Nothing to do: lorafuse orients every delta by module type, never by this flag.',
    });
  }

  findings.push(...scaleAndBiasFindings(cfg, adapter.file));

  // Base model name in adapter_config vs the base's config.
  const adapterBase = cfg.baseModelNameOrPath;
  const baseName = [base.config['_name_or_path'], base.config['name_or_path']].find((v): v is string => typeof v === 'string' && v.length > 0);
  if (adapterBase && baseName) {
    if (modelNameOf(adapterBase) !== modelNameOf(baseName)) {
      findings.push({
        severity: 'warning',
        code: 'BASE_MODEL_NAME_DIFFERS',
        subject: 'base_model_name_or_path',
        message: `the adapter was trained on "${adapterBase}" but the base's config.json names "${baseName}"`,
        fix: 'Check that <base-dir> is the model the adapter was trained on; shapes that match do not prove it.',
      });
    }
  }

  return findings;
}

/**
 * DoRA's tensors against `use_dora`: every LoRA module of a DoRA adapter needs its magnitude vector,
 * and magnitude vectors without `use_dora` are ignored by PEFT (a plain LoRA is built), each listed.
 */
function doraFindings(adapter: AdapterInput): Finding[] {
  const factors: string[] = [];
  const magnitudes = new Set<string>();
  const names = new Map<string, string>();
  for (const t of adapter.file.tensors) {
    const k = parseAdapterKey(t.name);
    if (k.kind === 'lora_A' || k.kind === 'lora_embedding_A') {
      factors.push(k.modulePath);
      names.set(k.modulePath, t.name.replace(/lora_(?:embedding_)?A(?:\.weight)?$/, 'lora_magnitude_vector'));
    } else if (k.kind === 'lora_magnitude_vector') {
      magnitudes.add(k.modulePath);
      names.set(k.modulePath, t.name);
    }
  }
  const list = (modules: readonly string[]) => {
    const keys = modules.map((m) => `"${names.get(m)}"`);
    return keys.length > 4 ? `${keys.slice(0, 4).join(', ')} and ${keys.length - 4} more` : keys.join(', ');
  };
  if (adapter.config.useDora) {
    const missing = factors.filter((m) => !magnitudes.has(m));
    if (missing.length === 0) return [];
    return [{
      severity: 'error',
      code: 'DORA_MAGNITUDE_MISSING',
      subject: names.get(missing[0]!)!,
      message: `adapter_config.json sets use_dora: true, but ${missing.length} of ${factors.length} LoRA module(s) have no DoRA magnitude vector: ${list(missing)}`,
      fix: 'PEFT saves one lora_magnitude_vector per DoRA module; re-save the adapter with PEFT, or set use_dora: false if it was trained without DoRA.',
    }];
  }
  if (magnitudes.size === 0) return [];
  return [{
    severity: 'error',
    code: 'DORA_WITHOUT_USE_DORA',
    subject: names.get([...magnitudes][0]!)!,
    message: `the adapter holds ${magnitudes.size} DoRA magnitude vector(s) (${list([...magnitudes])}) but adapter_config.json does not set use_dora: true: PEFT would ignore them and build a plain LoRA`,
    fix: 'If the adapter was trained with DoRA, set "use_dora": true in adapter_config.json; otherwise remove the lora_magnitude_vector tensors.',
  }];
}
