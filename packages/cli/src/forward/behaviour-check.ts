/**
 * `verify --behaviour`: the merged directory, as transformers loads it, against base + adapter with
 * the adapter applied unmerged, on the same token sequences. Weights can agree in every byte lorafuse
 * knows to check and the model still misbehave (or the reverse); this asks the model itself.
 */
import { BEHAVIOUR_TOLERANCE, checkBehaviour, defaultProbes, positionsCovered, type BehaviourProbes, type BehaviourReport, type FloatCodecDtype, type TransformersVersion } from '@lorafuse/core';
import type { OpenFiles } from '../fs/inputs.js';
import { openForwardDevice, type ForwardDeviceKind } from './forward-device.js';
import { coarsest, loadCheckpointModel, loadUnmergedModel } from './load-models.js';
import { promptIds } from './model-inputs.js';

/** What to probe with. */
export interface BehaviourOptions {
  readonly ids?: string | undefined;
  readonly prompt?: string | undefined;
  /** Greedy tokens to compare after each prompt. */
  readonly tokens: number;
  readonly version: TransformersVersion;
  /** Where both models run. */
  readonly device: ForwardDeviceKind;
}

/** The behavioural section of a verify report. */
export interface BehaviourSection extends BehaviourReport {
  readonly version: TransformersVersion;
  readonly device: string;
  readonly checkpoint: string;
  readonly reference: string;
  readonly dtype: FloatCodecDtype;
  readonly positions: string;
  /** Greedy continuations as text, when a tokenizer is there. */
  readonly text?: ReadonlyArray<{ readonly checkpoint: string; readonly reference: string }>;
  readonly notes: readonly string[];
}

/** Runs both models on the probes (the reference: base + every adapter, active together, with its weight) and compares their logits and greedy continuations. */
export async function runBehaviourCheck(outDir: string, baseDir: string, adapterDirs: readonly string[], weights: readonly number[] | undefined, files: OpenFiles, opts: BehaviourOptions): Promise<BehaviourSection> {
  const checkpoint = await loadCheckpointModel(outDir, files, opts.version);
  const reference = await loadUnmergedModel(baseDir, adapterDirs, files, opts.version, weights);
  const given = await promptIds('verify', reference, opts.ids, opts.prompt, false);
  const cfg = reference.model.config;
  const asked: BehaviourProbes = given.ids
    ? { sequences: [given.ids], greedyPrompts: [given.ids], greedyTokens: Math.max(0, Math.min(opts.tokens, cfg.nPositions - given.ids.length)) }
    : defaultProbes({ vocabSize: cfg.vocabSize, nPositions: cfg.nPositions, baseVocabSize: reference.baseVocabSize, parameterCount: reference.parameterCount, greedyTokens: opts.tokens });
  // A classifier's outputs are labels, not tokens: there is nothing to decode greedily.
  const generates = cfg.head === 'lm_head';
  const probes: BehaviourProbes = generates ? asked : { ...asked, greedyPrompts: [], greedyTokens: 0 };
  const dtype: FloatCodecDtype = coarsest(checkpoint.dtype, reference.dtype);
  const sameShape = checkpoint.model.head.outDim === reference.model.head.outDim && checkpoint.model.config.nPositions === cfg.nPositions;
  const device = await openForwardDevice(opts.device);
  let report: BehaviourReport;
  try {
    report = sameShape
      ? await checkBehaviour(device.runner(checkpoint.model), device.runner(reference.model), probes, BEHAVIOUR_TOLERANCE[dtype])
      : { tolerance: BEHAVIOUR_TOLERANCE[dtype], sequences: [], greedy: [], maxAbsDiff: Infinity, ok: false };
  } finally {
    await device.close();
  }
  const notes = [...checkpoint.notes.map((n) => `checkpoint: ${n}`), ...reference.notes.map((n) => `base + adapter: ${n}`)];
  if (!generates) notes.push(`a ${cfg.head} head gives labels, not tokens: its logits are compared, no greedy decoding`);
  if (!sameShape) notes.push(`the checkpoint has ${checkpoint.model.head.outDim} outputs and ${checkpoint.model.config.nPositions} positions, base + adapter ${reference.model.head.outDim} and ${cfg.nPositions}: not the same model`);
  const codec = given.codec;
  return {
    ...report,
    version: opts.version,
    device: device.description,
    checkpoint: checkpoint.model.description,
    reference: reference.model.description,
    dtype,
    positions: positionsCovered(probes, cfg.nPositions),
    ...(codec && generates
      ? { text: report.greedy.map((g) => ({ checkpoint: codec.decode([...g.prompt, ...g.a]), reference: codec.decode([...g.prompt, ...g.b]) })) }
      : {}),
    notes,
  };
}

/** The section in words. */
export function behaviourLines(b: BehaviourSection): string[] {
  const lines = [`behaviour: ${b.checkpoint} (as transformers ${b.version} loads it) vs ${b.reference} (adapter unmerged), on ${b.device}`];
  lines.push(`  probes: ${b.sequences.length} sequence(s), ${b.positions}; tolerance |a - b| <= ${b.tolerance.atol} + ${b.tolerance.rtol}·|b| (${b.dtype} weights)`);
  for (const s of b.sequences) {
    const w = s.worst;
    lines.push(`  ${s.positions} tokens: max |logit difference| ${s.maxAbsDiff.toExponential(2)}${w ? ` (position ${w.position}, output ${w.index}: ${w.a} vs ${w.b})` : ''}, ${s.violations} logit(s) outside the tolerance, top-1 agrees at ${s.top1Agree}/${s.positions} positions`);
  }
  b.greedy.forEach((g, i) => {
    const head = `  greedy, ${Math.max(g.a.length, g.b.length)} tokens after [${g.prompt.join(',')}]: `;
    lines.push(head + (g.firstDivergence === null ? 'the same tokens' : `diverge at token ${g.firstDivergence + 1}: checkpoint [${g.a.join(',')}] vs base + adapter [${g.b.join(',')}]`));
    const t = b.text?.[i];
    if (t && g.firstDivergence !== null) lines.push(`    checkpoint:     ${JSON.stringify(t.checkpoint)}`, `    base + adapter: ${JSON.stringify(t.reference)}`);
  });
  for (const n of b.notes) lines.push(`  note: ${n}`);
  lines.push(b.ok ? '  behaves as base + adapter' : '  behaves DIFFERENTLY from base + adapter');
  return lines;
}
