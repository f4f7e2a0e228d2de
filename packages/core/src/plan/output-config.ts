/**
 * Planning stage: the config.json the output needs — a resized vocabulary's `vocab_size`, an added
 * head's architecture and labels, an untied pair's `tie_word_embeddings` — or none when nothing changes.
 */
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

/** Computes the output config from the base config and the planned changes. */
export function planOutputConfig(baseConfig: Record<string, unknown>, base: BaseTensors, wteSource: TensorSource, newHead: AddedHead | null, tie: TiePlan): OutputConfig {
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
  const tieChange = tieConfigChange(tie, baseConfig);
  if (tieChange) {
    config['tie_word_embeddings'] = tieChange.value;
    changes.push(tieChange.text);
  }
  return { config: changes.length > 0 ? config : null, changes, findings };
}
