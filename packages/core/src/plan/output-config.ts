/**
 * Planning stage: the config.json the output needs — a resized vocabulary's `vocab_size`, an added
 * head's architecture and labels, an untied pair's `tie_word_embeddings`, a sequence classifier's
 * `pad_token_id` — or none when nothing changes.
 */
import { InputError } from '../errors.js';
import { architectureOf } from '../gpt2/architecture.js';
import type { BaseTensors } from './base-tensors.js';
import type { AddedHead } from './replacements.js';
import { tieConfigChange } from './tie.js';
import { outputTypeOf } from './tensor-source.js';
import type { Finding, TensorSource, TiePlan } from './types.js';

/** The config to write (`null`: copy config.json unchanged), what changed in words, and the findings. */
export interface OutputConfig {
  readonly config: Record<string, unknown> | null;
  readonly changes: readonly string[];
  readonly findings: readonly Finding[];
}

/**
 * Computes the output config from the base config and the planned changes. `padTokenId` is the
 * user's `--pad-token-id` (written whatever the model class).
 */
export function planOutputConfig(baseConfig: Record<string, unknown>, base: BaseTensors, wteSource: TensorSource, newHead: AddedHead | null, tie: TiePlan, padTokenId?: number): OutputConfig {
  const changes: string[] = [];
  const findings: Finding[] = [];
  const config: Record<string, unknown> = { ...baseConfig };
  const wteRows = outputTypeOf(wteSource).shape[0]!;
  const baseVocab = typeof baseConfig['vocab_size'] === 'number' ? (baseConfig['vocab_size'] as number) : base.wte.shape[0]!;
  if (wteRows !== baseVocab) {
    config['vocab_size'] = wteRows;
    changes.push(`vocab_size: ${baseVocab} → ${wteRows} (the adapter carries a resized embedding)`);
    findings.push({ severity: 'info', code: 'VOCAB_RESIZED', subject: 'vocab_size', message: `vocabulary resized from ${baseVocab} to ${wteRows} rows by the adapter's trained embedding` });
  }
  if (newHead) {
    const arch = newHead.module === 'score' ? 'GPT2ForSequenceClassification' : 'GPT2ForTokenClassification';
    config['architectures'] = [arch];
    changes.push(`architectures: ${JSON.stringify(baseConfig['architectures'] ?? null)} → ["${arch}"] (the adapter carries a trained "${newHead.module}" head)`);
    const oldLabels = baseConfig['id2label'];
    if (!(typeof oldLabels === 'object' && oldLabels !== null && Object.keys(oldLabels).length === newHead.labels)) {
      config['id2label'] = Object.fromEntries(Array.from({ length: newHead.labels }, (_, i) => [String(i), `LABEL_${i}`]));
      config['label2id'] = Object.fromEntries(Array.from({ length: newHead.labels }, (_, i) => [`LABEL_${i}`, i]));
      changes.push(`num_labels: ${newHead.labels} (id2label/label2id from the head's ${newHead.labels} rows)`);
    }
    findings.push({ severity: 'info', code: 'HEAD_ADDED', subject: `${newHead.module}.weight`, message: `the adapter's "${newHead.module}" head (${newHead.labels} labels) is added; the output loads as ${arch}` });
  }
  const outputArch = newHead ? (config['architectures'] as string[])[0]! : architectureOf(baseConfig);
  const pad = padTokenChange(baseConfig, outputArch, padTokenId, wteRows);
  if (pad.value !== undefined) {
    config['pad_token_id'] = pad.value;
    changes.push(pad.text);
  }
  findings.push(...pad.findings);
  const tieChange = tieConfigChange(tie, baseConfig);
  if (tieChange) {
    config['tie_word_embeddings'] = tieChange.value;
    changes.push(tieChange.text);
  }
  return { config: changes.length > 0 ? config : null, changes, findings };
}

/** A config id field as transformers reads it (an int, or the first of a list). */
function idField(config: Record<string, unknown>, field: string): number | null {
  const v = config[field];
  const id = Array.isArray(v) ? v[0] : v;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null;
}

/**
 * GPT2ForSequenceClassification pools at the last non-pad token and, without `pad_token_id`, refuses
 * every batch of more than one sequence ("Cannot handle batch sizes > 1 if no padding token is
 * defined"); training recipes set `pad_token_id = eos_token_id` on the model in memory, which the
 * saved adapter does not record. So a classifier output without one gets eos (or `--pad-token-id`).
 */
function padTokenChange(baseConfig: Record<string, unknown>, arch: string, requested: number | undefined, vocab: number): { value?: number; text: string; findings: Finding[] } {
  const current = idField(baseConfig, 'pad_token_id');
  if (requested !== undefined) {
    if (!(Number.isInteger(requested) && requested >= 0 && requested < vocab)) {
      throw new InputError('PAD_TOKEN_OUT_OF_RANGE', `--pad-token-id ${requested} is outside the output's vocabulary of ${vocab} tokens`, { subject: '--pad-token-id', hint: `Give a token id from 0 to ${vocab - 1}.` });
    }
    if (current === requested) return { text: '', findings: [] };
    return { value: requested, text: `pad_token_id: ${JSON.stringify(baseConfig['pad_token_id'] ?? null)} → ${requested} (--pad-token-id)`, findings: [] };
  }
  if (arch !== 'GPT2ForSequenceClassification' || current !== null) return { text: '', findings: [] };
  const eos = idField(baseConfig, 'eos_token_id');
  if (eos === null) {
    return {
      text: '',
      findings: [{
        severity: 'warning',
        code: 'PAD_TOKEN_MISSING',
        subject: 'pad_token_id',
        message: 'the output is a GPT2ForSequenceClassification whose config has neither pad_token_id nor eos_token_id: transformers refuses batches of more than one sequence',
        fix: 'Pass --pad-token-id <id> (the id training padded with).',
      }],
    };
  }
  return {
    value: eos,
    text: `pad_token_id: null → ${eos} (eos_token_id; a GPT2ForSequenceClassification without pad_token_id refuses batches of more than one sequence)`,
    findings: [{
      severity: 'info',
      code: 'PAD_TOKEN_SET',
      subject: 'pad_token_id',
      message: `pad_token_id set to eos_token_id ${eos}, as training recipes set it: without one, transformers refuses batches of more than one sequence; the classifier pools at the last token that is not ${eos}`,
      fix: 'If training padded with another token, pass --pad-token-id <id>.',
    }],
  };
}
