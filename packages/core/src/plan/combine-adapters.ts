/**
 * Planning stage: several adapters active together, as one effect on the base. On a weight that
 * several adapters train with LoRA, their deltas add up in adapter order (each already carries its
 * weight), which is exactly what PEFT's model computes with all of them active; a DoRA adapter among
 * them keeps its step in that order, since it rescales what the adapters before it left. A full tensor
 * (modules_to_save, saved embedding, trained bias, added head) or trainable-token rows are values,
 * not deltas: two adapters may give the same one only byte-identically (checked on the bytes before
 * anything is written); different values, or one adapter's LoRA on a tensor another replaces, have
 * no single meaning PEFT gives them, so they are refused with both adapters named.
 */
import { InputError } from '../errors.js';
import { shapeText } from '../shape.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { AdapterEffect } from './adapter-effect.js';
import type { AddedHead } from './replacements.js';
import type { DuplicateCopy, Finding, TensorSource } from './types.js';

/** The adapters' effects combined. */
export interface CombinedEffect {
  readonly effective: ReadonlyMap<string, TensorSource>;
  /** The adapters that change each tensor, in order, by canonical name. */
  readonly changedBy: ReadonlyMap<string, readonly string[]>;
  readonly newHead: AddedHead | null;
  /** LoRA module paths, each once, in the order the adapters name them. */
  readonly loraModules: readonly string[];
  readonly duplicateCopies: readonly DuplicateCopy[];
  readonly findings: readonly Finding[];
}

const sameType = (a: TensorRef, b: TensorRef) => a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
const sameRef = (a: TensorRef, b: TensorRef) => sameType(a, b) && a.file === b.file && a.fileOffset === b.fileOffset && a.byteLength === b.byteLength;
const typeText = (r: TensorRef) => `${r.dtype} ${shapeText(r.shape)}`;

function describe(source: TensorSource): string {
  if (source.kind === 'merge') return 'trains it with LoRA';
  if (source.kind === 'rows') return `replaces rows ${JSON.stringify(source.indices)} of it (trainable tokens)`;
  if (source.kind === 'bias') return 'adds a trained lora_B bias to it';
  return 'replaces it with a full tensor';
}

function conflict(canonical: string, first: string, second: string, what: string, hint: string): InputError {
  return new InputError('ADAPTER_CONFLICT', `adapters ${first} and ${second} both change "${canonical}": ${what}`, { subject: canonical, hint });
}

const ONE_AT_A_TIME = 'If applying them one after the other is what you mean, merge the first adapter, then merge the second into that output.';

/** Combines the effects in order; throws `InputError` when two adapters change one tensor incompatibly. */
export function combineAdapterEffects(effects: readonly AdapterEffect[]): CombinedEffect {
  const several = effects.length > 1;
  const effective = new Map<string, TensorSource>();
  const changedBy = new Map<string, string[]>();
  const duplicates = new Map<string, DuplicateCopy>();
  const findings: Finding[] = [];
  const loraModules: string[] = [];
  let newHead: AddedHead | null = null;
  let headBy = '';
  const sameBytes = (tensor: string, kept: TensorRef, keptBy: string, duplicate: TensorRef, duplicateBy: string) => {
    if (sameRef(kept, duplicate)) return;
    duplicates.set(`${kept.file}@${kept.fileOffset}|${duplicate.file}@${duplicate.fileOffset}`, { tensor, kept, duplicate, keptBy, duplicateBy });
  };
  for (const e of effects) {
    for (const m of e.loraModules) if (!loraModules.includes(m)) loraModules.push(m);
    for (const d of e.duplicateCopies) duplicates.set(`${d.kept.file}@${d.kept.fileOffset}|${d.duplicate.file}@${d.duplicate.fileOffset}`, d);
    findings.push(...(several ? e.findings.map((f) => ({ ...f, message: `${e.label}: ${f.message}` })) : e.findings));
    if (e.newHead) {
      if (newHead && !sameType(newHead.ref, e.newHead.ref)) {
        throw conflict(`${e.newHead.module}.weight`, headBy, e.label, `both add a "${e.newHead.module}" head, as ${typeText(newHead.ref)} and ${typeText(e.newHead.ref)}`, 'Merge adapters that add one head, or that add the same one.');
      }
      if (newHead) sameBytes(`${newHead.module}.weight`, newHead.ref, headBy, e.newHead.ref, e.label);
      else [newHead, headBy] = [e.newHead, e.label];
    }
    for (const [canonical, source] of e.effective) {
      const prior = effective.get(canonical);
      const by = changedBy.get(canonical) ?? [];
      changedBy.set(canonical, [...by, e.label]);
      if (!prior) {
        effective.set(canonical, source);
        continue;
      }
      const first = by[0]!;
      if (prior.kind === 'merge' && source.kind === 'merge') {
        if (!sameType(prior.base, source.base)) {
          throw conflict(canonical, first, e.label, `their LoRA starts from ${typeText(prior.base)} and ${typeText(source.base)} weights`, 'The adapters were trained on different bases (or one saved a resized base_layer weight); merge adapters of one base.');
        }
        // A base_layer weight one adapter saved must be the weight the other's delta starts from.
        sameBytes(canonical, prior.base, first, source.base, e.label);
        const dora = [...(prior.dora ?? []), ...(source.dora ?? [])];
        effective.set(canonical, { kind: 'merge', base: prior.base, deltas: [...prior.deltas, ...source.deltas], ...(dora.length > 0 ? { dora } : {}) });
        continue;
      }
      if (prior.kind === 'bias' && source.kind === 'bias') {
        // lora_B biases are deltas like LoRA's: they add up on the bias both start from.
        if (!sameType(prior.base, source.base)) {
          throw conflict(canonical, first, e.label, `their lora_B biases start from ${typeText(prior.base)} and ${typeText(source.base)} biases`, 'The adapters were trained on different bases; merge adapters of one base.');
        }
        sameBytes(canonical, prior.base, first, source.base, e.label);
        effective.set(canonical, { kind: 'bias', base: prior.base, terms: [...prior.terms, ...source.terms] });
        continue;
      }
      if (prior.kind === 'replace' && source.kind === 'replace') {
        if (!sameType(prior.from, source.from)) {
          throw conflict(canonical, first, e.label, `each replaces it with its own full tensor, ${typeText(prior.from)} and ${typeText(source.from)}`, 'A module saved whole (modules_to_save, a saved embedding, a trained bias) can come from one adapter only, unless both saved identical values; PEFT refuses to combine such adapters too.');
        }
        sameBytes(canonical, prior.from, first, source.from, e.label);
        continue;
      }
      if (prior.kind === 'rows' && source.kind === 'rows') {
        if (prior.indices.join() !== source.indices.join() || !sameType(prior.rows, source.rows)) {
          // PEFT's TrainableTokensWrapper.set_adapter refuses more than one of them active at once.
          throw conflict(canonical, first, e.label, `both train tokens of it (rows ${JSON.stringify(prior.indices)} and ${JSON.stringify(source.indices)}): PEFT activates one adapter's trainable tokens per embedding at a time, so the two together have no single meaning`, ONE_AT_A_TIME);
        }
        sameBytes(canonical, prior.rows, first, source.rows, e.label);
        continue;
      }
      throw conflict(canonical, first, e.label, `${first} ${describe(prior)} and ${e.label} ${describe(source)}`, `PEFT keeps one active adapter per module saved whole or with trainable tokens, so the two together have no single meaning; lorafuse does not guess. ${ONE_AT_A_TIME}`);
    }
  }
  refuseLoraBiasBeforeDora(effective, changedBy, effects.map((e) => e.label));
  for (const [canonical, source] of effective) {
    if (source.kind !== 'merge' || new Set(source.deltas.map((d) => d.adapter)).size < 2) continue;
    const ranks = source.deltas.map((d) => `${d.adapter}: r=${d.rank}, weight ${d.weight}`);
    findings.push({
      severity: 'info',
      code: 'ADAPTERS_SHARE_MODULE',
      subject: canonical,
      message: `"${canonical}" gets LoRA deltas from ${source.deltas.length} adapters (${ranks.join('; ')}): they add up${new Set(source.deltas.map((d) => d.rank)).size > 1 ? ', whatever their ranks' : ''}`,
    });
  }
  return { effective, changedBy, newHead, loraModules, duplicateCopies: [...duplicates.values()], findings };
}

/**
 * PEFT's DoRA layer rescales the module's output so far, an earlier adapter's `lora_B` bias included,
 * so that bias would no longer be a plain sum on the module's bias; lorafuse refuses the order rather
 * than approximate it (PEFT itself refuses lora_bias and DoRA in one adapter).
 */
function refuseLoraBiasBeforeDora(effective: ReadonlyMap<string, TensorSource>, changedBy: ReadonlyMap<string, readonly string[]>, order: readonly string[]): void {
  for (const [canonical, source] of effective) {
    if (source.kind !== 'merge' || !source.dora || !canonical.endsWith('.weight')) continue;
    const biasName = `${canonical.slice(0, -'.weight'.length)}.bias`;
    if (effective.get(biasName)?.kind !== 'bias') continue;
    const biasBy = changedBy.get(biasName) ?? [];
    for (const step of source.dora) {
      const earlier = biasBy.find((label) => order.indexOf(label) < order.indexOf(step.adapter));
      if (earlier) {
        throw new InputError('ADAPTER_FEATURE_UNSUPPORTED', `adapter ${step.adapter} applies DoRA to "${canonical}" after ${earlier} trained a lora_B bias on it: DoRA would rescale that bias, which lorafuse does not merge`, {
          subject: biasName,
          hint: `Put ${step.adapter} before ${earlier} on the command line, or ${ONE_AT_A_TIME.charAt(0).toLowerCase()}${ONE_AT_A_TIME.slice(1)}`,
        });
      }
    }
  }
}
