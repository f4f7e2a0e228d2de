/**
 * The weight a module's change starts from: a `base_layer` tensor saved in the adapter, else the
 * base's own; a tied base's lm_head starts from the tied matrix, i.e. the base wte.
 */
import { TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import { tensorRefOf, type TensorRef } from '../safetensors/tensor-ref.js';
import type { AdapterTensors } from './adapter-tensors.js';
import type { BaseTensors } from './base-tensors.js';

/** Looks up the starting weight of a tensor by canonical name (undefined when neither input has it). */
export type StartingWeight = (canonical: string) => TensorRef | undefined;

/** The {@link StartingWeight} lookup over one base and one adapter file. */
export function startingWeights(base: BaseTensors, adapter: AdapterTensors, adapterFile: SafetensorsHeader): StartingWeight {
  return (canonical) => {
    const r = adapter.replacements.get(canonical);
    if (r?.fromBaseLayer) return tensorRefOf(adapterFile, r.info);
    if (canonical === TIED_OUTPUT_WEIGHT && base.tied) return base.wte;
    return base.byCanonical.get(canonical);
  };
}
