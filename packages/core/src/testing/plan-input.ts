/**
 * A `planMerge` input straight from generated files (as `makeGpt2Checkpoint` and `makeLoraAdapter`
 * give them), read the way the CLI reads a directory: config.json as is, adapter_config.json through
 * PEFT's rules, each model file's header.
 */
import { memorySource } from '../io.js';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import type { PlanMergeInput, PlanMergeOptions } from '../plan/types.js';
import { readSafetensorsHeader } from '../safetensors/header.js';

/** Generated files of a checkpoint or an adapter directory. */
interface FixtureFiles {
  readonly files: Record<string, Uint8Array>;
}

/**
 * One adapter is labelled `adapter`, several `a1`, `a2`, ... unless given a label; its files are
 * named `<label>/adapter_config.json` and `<label>/adapter_model.safetensors`.
 */
export async function planInputOf(
  base: FixtureFiles & { readonly config: Record<string, unknown> },
  adapters: ReadonlyArray<FixtureFiles & { readonly label?: string; readonly weight?: number }>,
  options?: PlanMergeOptions,
): Promise<PlanMergeInput> {
  const opened = [];
  for (const [i, a] of adapters.entries()) {
    const label = a.label ?? (adapters.length === 1 ? 'adapter' : `a${i + 1}`);
    opened.push({
      label,
      config: parseAdapterConfig(new TextDecoder().decode(a.files['adapter_config.json']), `${label}/adapter_config.json`),
      file: await readSafetensorsHeader(memorySource(`${label}/adapter_model.safetensors`, a.files['adapter_model.safetensors']!)),
      ...(a.weight !== undefined ? { weight: a.weight } : {}),
    });
  }
  return {
    base: { label: 'base', config: base.config, files: [await readSafetensorsHeader(memorySource('base/model.safetensors', base.files['model.safetensors']!))] },
    adapters: opened,
    ...(options ? { options } : {}),
  };
}
