/**
 * The two error scopes around a kernel call. WebGPU keeps one scope stack per device, shared by
 * every call in flight, so a call pops both of its scopes in one synchronous step: popped across an
 * await, two calls overlapping in one page (several merges in flight) would pop each other's.
 */

/** Opens the out-of-memory and validation scopes of one call (the work is recorded and submitted next, without an await). */
export function pushCallScopes(device: GPUDevice): void {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
}

/** Closes the scopes {@link pushCallScopes} opened: the first error of each, or null. */
export async function popCallScopes(device: GPUDevice): Promise<{ readonly validation: GPUError | null; readonly outOfMemory: GPUError | null }> {
  const [validation, outOfMemory] = await Promise.all([device.popErrorScope(), device.popErrorScope()]);
  return { validation, outOfMemory };
}
