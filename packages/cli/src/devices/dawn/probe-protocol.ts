/**
 * What the driver probe's parent and child process share: the environment overlay one attempt
 * runs under, the request and answer of an attempt, and how answers are told apart from what
 * native code prints.
 */
import type { AdapterIdentity } from '@lorafuse/kernels';

/**
 * Environment variables set only while Dawn creates its Vulkan instance: a string sets one, `null`
 * unsets one. The loader reads them then, and every new Dawn instance reads them again.
 */
export type DriverOverlay = Readonly<Record<string, string | null>>;

/** One attempt of the probe: start Dawn under `overlay` with `dawnOptions`. */
export interface ProbeRequest {
  readonly overlay: DriverOverlay;
  readonly dawnOptions: readonly string[];
}

/** The outcome of one attempt: the adapter Dawn gave (with a device on lorafuse's limits), or why none. */
export type ProbeAnswer = { readonly adapter: AdapterIdentity } | { readonly failure: string };

/**
 * Written to stderr by the child after each attempt, so the parent knows which native output
 * belongs to which attempt (native code writes to the same file descriptor, unbuffered).
 */
export const ATTEMPT_DONE = '\n@@lorafuse-driver-probe: attempt done@@\n';

/** Prefix of each answer line on stdout, which native code may write to as well. */
export const ANSWER_PREFIX = '@@lorafuse-driver-probe: answer@@';

/**
 * Applies `overlay` to this process's environment (which native code reads with getenv) and
 * returns the function that restores what was there before.
 */
export function applyOverlay(overlay: DriverOverlay): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(overlay)) {
    saved.set(name, process.env[name]);
    if (value === null) delete process.env[name];
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** The identifying fields of a Dawn adapter's info. */
export function adapterIdentity(info: GPUAdapterInfo): AdapterIdentity {
  const i = info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: Boolean(i.isFallbackAdapter) };
}

/** An adapter in words, e.g. `SwiftShader driver 5.0.0 (google)`. */
export function adapterName(a: AdapterIdentity): string {
  const name = a.description || a.device || a.architecture || 'WebGPU adapter';
  return a.vendor ? `${name} (${a.vendor})` : name;
}
