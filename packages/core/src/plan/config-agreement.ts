/**
 * Planning stage: adapter_config.json against the adapter's tensors. PEFT builds its LoRA layers from
 * the config (target_modules, exclude_modules, modules_to_save, layers_to_transform/layers_pattern)
 * and silently ignores saved tensors of modules the config does not select, so merging such tensors
 * would give a model that differs from PEFT's unmerged one. lorafuse never diverges silently: a
 * disagreement is an error unless the user says which side to follow.
 */
import { InputError } from '../errors.js';
import { whyNotLoraTarget } from '../peft/target-selection.js';
import type { AdapterTensors, LoraPair } from './adapter-tensors.js';
import type { Finding, FollowRule, SingleAdapterInput } from './types.js';

/** The adapter tensors the merge uses, and what the stage found. */
export interface ConfigAgreement {
  readonly tensors: AdapterTensors;
  readonly findings: readonly Finding[];
}

/** Checks that the config selects every module with LoRA tensors; applies `follow` when it does not. */
export function reconcileConfigAndTensors(input: SingleAdapterInput, tensors: AdapterTensors, follow: FollowRule | undefined): ConfigAgreement {
  const { adapter } = input;
  const ignored = new Map<string, string>();
  for (const modulePath of tensors.loraPairs.keys()) {
    const why = whyNotLoraTarget(adapter.config, modulePath);
    if (why !== null) ignored.set(modulePath, why);
  }
  if (ignored.size === 0) return { tensors, findings: [] };
  const list = [...ignored].map(([m, why]) => `"${m}" (${why})`);
  const shown = list.length > 4 ? `${list.slice(0, 4).join('; ')}; and ${list.length - 4} more` : list.join('; ');
  const fields = [...new Set([...ignored.values()].map((why) => why.split(' ', 1)[0]!))].join(', ');
  const what = `adapter_config.json and the adapter's tensors disagree: PEFT would build no LoRA layer for ${ignored.size} module(s) that have LoRA tensors, and ignore those tensors: ${shown}`;
  if (follow === undefined) {
    throw new InputError('ADAPTER_CONFIG_DISAGREES', `${adapter.label}: ${what}`, {
      subject: fields,
      hint: 'Pass --follow config to merge what PEFT\'s unmerged model computes (those tensors are left out), or --follow tensors to merge every saved tensor; or correct adapter_config.json.',
    });
  }
  if (follow === 'tensors') {
    return { tensors, findings: [{ severity: 'warning', code: 'ADAPTER_CONFIG_DISAGREES', subject: fields, message: `${what}; merged anyway (--follow tensors), so the output differs from PEFT's unmerged model there` }] };
  }
  const targets = adapter.config.targetModules;
  if (Array.isArray(targets) && targets.length === 0) {
    throw new InputError('ADAPTER_CONFIG_UNLOADABLE', `${adapter.label}: target_modules is empty, so PEFT refuses to load this adapter and --follow config has nothing to follow`, {
      subject: 'target_modules',
      hint: 'Use --follow tensors to merge the saved tensors, or set target_modules in adapter_config.json.',
    });
  }
  const loraPairs = new Map<string, LoraPair>([...tensors.loraPairs].filter(([m]) => !ignored.has(m)));
  return {
    tensors: { ...tensors, loraPairs },
    findings: [{ severity: 'info', code: 'ADAPTER_TENSORS_IGNORED', subject: fields, message: `${what}; left out, as PEFT does (--follow config)` }],
  };
}
