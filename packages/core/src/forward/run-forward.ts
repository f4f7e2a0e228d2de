/**
 * The GPT-2 forward pass (as transformers' modeling_gpt2 computes it in eval mode) on the CPU
 * references of the kernels, with LoRA applied unmerged and a key/value cache for decoding.
 */
import { activationRef, causalAttentionRef, embeddingRef, layerNormRef, matmulRef } from '@lorafuse/kernels/reference';
import { InputError } from '../errors.js';
import { doraMagnitudeScale } from './dora.js';
import { attentionScale } from './forward-config.js';
import type { EmbeddingUnit, Gpt2Model, LinearUnit } from './gpt2-model.js';

/** Keys and values of every position seen so far, per layer: `[positions, n_embd]` each. */
export interface KvCache {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  length: number;
}

/** An empty cache for `model`. */
export function emptyKvCache(model: Gpt2Model): KvCache {
  return { keys: model.blocks.map(() => new Float32Array(0)), values: model.blocks.map(() => new Float32Array(0)), length: 0 };
}

/** Checks ids and positions before any work, naming the config field a bad input runs into. */
export function checkForwardInput(model: Gpt2Model, ids: readonly number[], past: number): void {
  const { vocabSize, nPositions } = model.config;
  const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (bad >= 0) {
    throw new InputError('TOKEN_ID_OUT_OF_RANGE', `token id ${ids[bad]} (position ${past + bad}) is outside the vocabulary: vocab_size is ${vocabSize}`, {
      subject: 'vocab_size',
      hint: `Token ids run from 0 to ${vocabSize - 1}.`,
    });
  }
  if (past + ids.length > nPositions) {
    throw new InputError('SEQUENCE_TOO_LONG', `${past + ids.length} tokens do not fit the model: n_positions is ${nPositions}`, {
      subject: 'n_positions',
      hint: `Give at most ${nPositions} tokens (prompt plus generated).`,
    });
  }
  if (ids.length === 0) throw new InputError('EMPTY_SEQUENCE', 'no token ids to run', { subject: 'ids', hint: 'Give at least one token.' });
}

/**
 * `x → x W + b + Σ scale·(x Aᵀ) Bᵀ` for `rows` rows, the terms in adapter order. A DoRA term adds, as
 * PEFT's forward does, `(f - 1)·r + f·scale·(x Aᵀ) Bᵀ` with f = `m / ‖W + s·B·A‖` per output feature,
 * where r is the module's output so far without its bias: `x W` for the first term, the earlier
 * adapters' outputs included after them.
 */
export function applyLinear(unit: LinearUnit, x: Float32Array, rows: number): Float32Array {
  const shape = { rows, inDim: unit.inDim, outDim: unit.outDim, order: unit.order };
  const y = matmulRef(x, unit.weight, shape, unit.bias);
  // PEFT subtracts the base bias from the result so far: DoRA's scaling applies to the rest.
  const sofar = unit.lora.some((t) => t.magnitude) ? matmulRef(x, unit.weight, shape) : undefined;
  for (const t of unit.lora) {
    const down = matmulRef(x, t.a, { rows, inDim: unit.inDim, outDim: t.rank, order: 'out-in' });
    const up = matmulRef(down, t.b, { rows, inDim: t.rank, outDim: unit.outDim, order: 'out-in' });
    if (!t.magnitude) {
      for (let i = 0; i < y.length; i++) {
        y[i] = y[i]! + up[i]! * t.scale;
        if (sofar) sofar[i] = sofar[i]! + up[i]! * t.scale;
      }
      continue;
    }
    const f = doraMagnitudeScale(unit, t, t.magnitude);
    for (let i = 0; i < y.length; i++) {
      const fo = f[i % unit.outDim]!;
      const add = (fo - 1) * sofar![i]! + fo * up[i]! * t.scale;
      y[i] = y[i]! + add;
      sofar![i] = sofar![i]! + add;
    }
  }
  return y;
}

/** `wte[ids] + Σ scale·(A[:, ids])ᵀ Bᵀ` (a DoRA term scales the sum so far per dimension, as PEFT does). */
export function embedTokens(unit: EmbeddingUnit, ids: readonly number[]): Float32Array {
  const h = embeddingRef(unit.table, unit.dim, ids);
  for (const t of unit.lora) {
    // Row i of A[:, ids]ᵀ is column ids[i] of A.
    const picked = new Float32Array(ids.length * t.rank);
    ids.forEach((id, i) => {
      for (let r = 0; r < t.rank; r++) picked[i * t.rank + r] = t.a[r * unit.rows + id]!;
    });
    const up = matmulRef(picked, t.b, { rows: ids.length, inDim: t.rank, outDim: unit.dim, order: 'out-in' });
    if (!t.magnitude) {
      for (let i = 0; i < h.length; i++) h[i] = h[i]! + up[i]! * t.scale;
      continue;
    }
    // DoRA on an Embedding (PEFT): result = f·result + f·scale·lora, f per embedding dimension.
    const f = doraMagnitudeScale({ weight: unit.table, order: 'in-out', inDim: unit.rows, outDim: unit.dim }, t, t.magnitude);
    for (let i = 0; i < h.length; i++) {
      const fd = f[i % unit.dim]!;
      h[i] = fd * h[i]! + fd * up[i]! * t.scale;
    }
  }
  return h;
}

function appendRows(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Logits of the head at every new position: `[ids.length, head outputs]`; the cache grows by ids.length. */
export function forwardGpt2(model: Gpt2Model, ids: readonly number[], cache: KvCache = emptyKvCache(model)): Float32Array {
  const { config } = model;
  const T = ids.length;
  const E = config.nEmbd;
  checkForwardInput(model, ids, cache.length);
  let h = embedTokens(model.wte, ids);
  for (let i = 0; i < T; i++) {
    const pos = cache.length + i;
    for (let d = 0; d < E; d++) h[i * E + d] = h[i * E + d]! + model.wpe[pos * E + d]!;
  }
  model.blocks.forEach((block, l) => {
    const a = layerNormRef(h, T, E, block.ln1.weight, block.ln1.bias, config.eps);
    const qkv = applyLinear(block.attn, a, T);
    const q = new Float32Array(T * E);
    const k = new Float32Array(T * E);
    const v = new Float32Array(T * E);
    for (let i = 0; i < T; i++) {
      q.set(qkv.subarray(i * 3 * E, i * 3 * E + E), i * E);
      k.set(qkv.subarray(i * 3 * E + E, i * 3 * E + 2 * E), i * E);
      v.set(qkv.subarray(i * 3 * E + 2 * E, i * 3 * E + 3 * E), i * E);
    }
    const keys = appendRows(cache.keys[l]!, k);
    const values = appendRows(cache.values[l]!, v);
    cache.keys[l] = keys;
    cache.values[l] = values;
    const o = causalAttentionRef({ q, k: keys, v: values, queries: T, positions: cache.length + T, heads: config.nHead, headDim: config.headDim, scale: attentionScale(config, l) });
    const attnOut = applyLinear(block.attnProj, o, T);
    for (let i = 0; i < h.length; i++) h[i] = h[i]! + attnOut[i]!;
    const m = layerNormRef(h, T, E, block.ln2.weight, block.ln2.bias, config.eps);
    const inner = activationRef(config.activation, applyLinear(block.fc, m, T));
    const mlpOut = applyLinear(block.proj, inner, T);
    for (let i = 0; i < h.length; i++) h[i] = h[i]! + mlpOut[i]!;
  });
  cache.length += T;
  h = layerNormRef(h, T, E, model.lnF.weight, model.lnF.bias, config.eps);
  return applyLinear(model.head, h, T);
}

/**
 * The logits a sequence classifier reports: those at the rightmost token that is not the pad token
 * (any token when the config has no pad id), as GPT2ForSequenceClassification pools.
 */
export function pooledPosition(ids: readonly number[], padTokenId: number | null): number {
  if (padTokenId === null) return ids.length - 1;
  for (let i = ids.length - 1; i >= 0; i--) if (ids[i] !== padTokenId) return i;
  // Every token is padding: argmax over all-zero scores picks position 0.
  return 0;
}
