/**
 * Planning stage: the base checkpoint's tensors by canonical name (either key layout, across shards),
 * and whether its embedding and output head are one matrix.
 */
import { InputError } from '../errors.js';
import { BODY_PREFIX, canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { configShapeMismatches } from '../gpt2/config-shapes.js';
import { tensorRefOf, type TensorRef } from '../safetensors/tensor-ref.js';
import type { Finding, PlanMergeInput } from './types.js';

/** The base as the later stages need it. */
export interface BaseTensors {
  readonly byCanonical: ReadonlyMap<string, TensorRef>;
  /** The input embedding (every GPT-2 has one). */
  readonly wte: TensorRef;
  /** `lm_head` is `wte` at load time: the config ties them and no lm_head.weight is stored. */
  readonly tied: boolean;
  readonly findings: readonly Finding[];
}

/** Indexes the base's tensors; refuses a checkpoint that stores a weight twice or is not GPT-2. */
export function indexBaseTensors(base: PlanMergeInput['base']): BaseTensors {
  const byCanonical = new Map<string, TensorRef>();
  for (const header of base.files) {
    for (const t of header.tensors) {
      const canonical = canonicalName(t.name);
      const prior = byCanonical.get(canonical);
      if (prior) {
        throw new InputError('BASE_DUPLICATE_TENSOR', `${base.label}: tensor "${canonical}" is stored twice (as "${prior.name}" in ${prior.file} and "${t.name}" in ${header.label})`, {
          subject: canonical,
          hint: 'A checkpoint must store each weight once; re-save it with transformers.',
        });
      }
      byCanonical.set(canonical, tensorRefOf(header, t));
    }
  }
  const wte = byCanonical.get(TIED_INPUT_WEIGHT);
  if (!wte || !byCanonical.has(`${BODY_PREFIX}h.0.attn.c_attn.weight`)) {
    throw new InputError('BASE_NOT_GPT2', `${base.label}: the weights are not a GPT-2 checkpoint (no "wte.weight" or "h.0.attn.c_attn.weight", with or without the "transformer." prefix)`, {
      subject: base.label,
      hint: 'Point <base-dir> at a directory written by GPT2LMHeadModel.save_pretrained or GPT2Model.save_pretrained.',
    });
  }
  const mismatches = configShapeMismatches(base.config, new Map([...byCanonical].map(([name, ref]) => [name, ref.shape])));
  if (mismatches.length > 0) {
    throw new InputError('BASE_CONFIG_MISMATCH', `${base.label}: config.json does not describe the checkpoint's tensors: ${mismatches.map((m) => m.message).join('; ')}`, {
      subject: mismatches[0]!.field,
      hint: 'transformers builds the model from config.json and cannot load tensors of other shapes; use the config.json saved with these weights.',
    });
  }
  const configTies = base.config['tie_word_embeddings'] !== false;
  // A PyTorch state dict of a tied model stores lm_head.weight as a view of wte's storage: the very
  // same bytes, i.e. the tie itself (safetensors cannot alias, so this happens only in .bin files).
  const head = byCanonical.get(TIED_OUTPUT_WEIGHT);
  if (configTies && head && isSameBytes(head, wte)) byCanonical.delete(TIED_OUTPUT_WEIGHT);
  const storesHead = byCanonical.has(TIED_OUTPUT_WEIGHT);
  const findings: Finding[] = [];
  if (configTies && storesHead) {
    findings.push({
      severity: 'warning',
      code: 'TIED_HEAD_STORED',
      subject: TIED_OUTPUT_WEIGHT,
      message: 'the base config ties lm_head to wte but the checkpoint also stores lm_head.weight; lorafuse treats the stored lm_head as its own matrix (transformers v4 would discard it)',
      fix: 'Re-save the base with transformers so the config and the stored keys agree.',
    });
  }
  // A stored lm_head.weight with an untied config is its own matrix.
  return { byCanonical, wte, tied: configTies && !storesHead, findings };
}

/** Whether two tensor refs name the very same bytes of one file, as the same dtype and shape. */
function isSameBytes(a: TensorRef, b: TensorRef): boolean {
  return a.file === b.file && a.fileOffset === b.fileOffset && a.byteLength === b.byteLength && a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}
