/**
 * The page's words for a merge: the doctor's findings, what the plan does with each tensor, the tie
 * decision and why, the config changes, and what the proof checked. Text only; main.ts places it.
 */
import { tieOutcome, type Finding, type MergePlan, type VerifyReport } from '@lorafuse/core';

/** One line per finding, as the CLI prints them. */
export function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.severity}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`);
}

/** The plan in lines: the counts, the LoRA modules, each tensor's fate, the tie and the config. */
export function planLines(plan: MergePlan): string[] {
  const s = plan.summary;
  const lines = [`tensors: ${s.merged} merged, ${s.replaced} replaced, ${s.added} added, ${s.copied} copied unchanged`];
  const scales = new Map<string, number>();
  for (const t of plan.tensors) {
    if (t.source.kind !== 'merge') continue;
    for (const d of t.source.deltas) {
      const k = `r=${d.rank} alpha=${d.alpha} scale=${d.scale}${t.source.dora?.some((s) => s.adapter === d.adapter) ? ' (DoRA)' : ''}`;
      scales.set(k, (scales.get(k) ?? 0) + 1);
    }
  }
  for (const [k, n] of scales) lines.push(`${n} LoRA module(s) with ${k}`);
  const tie = tieOutcome(plan);
  lines.push(`tie: ${tie.decision} (${tie.reason})`);
  for (const c of plan.configChanges) lines.push(`config.json: ${c}`);
  for (const t of plan.tensors) {
    const src = t.source;
    const what = src.kind === 'merge' ? `merged (${src.deltas.map((d) => d.modulePath).join(' + ')})` : src.kind === 'copy' ? 'copied' : src.kind === 'replace' ? `replaced from ${src.from.file}` : src.kind === 'rows' ? `${src.indices.length} trainable token row(s) replaced` : 'LoRA bias added';
    if (src.kind !== 'copy') lines.push(`${t.name} ${t.dtype} [${t.shape.join(', ')}]: ${what}`);
  }
  return lines;
}

/** What the proof checked, in lines. */
export function proofLines(proof: VerifyReport): string[] {
  return proof.byVersion.map((v) => `transformers ${v.version}${v.tied ? ' (tied)' : ''}: ${v.checks.length} parameters loaded, each byte for byte what the merge meant`);
}
