import { describe, expect, it } from 'vitest';
import { popCallScopes, pushCallScopes } from './error-scopes.js';

/** A device's error-scope stack as WebGPU keeps it: an error goes to the innermost scope of its filter. */
function scopeStack() {
  const stack: Array<{ filter: GPUErrorFilter; error: GPUError | null }> = [];
  const device = {
    pushErrorScope: (filter: GPUErrorFilter) => void stack.push({ filter, error: null }),
    popErrorScope: () => {
      const scope = stack.pop();
      return scope ? Promise.resolve(scope.error) : Promise.reject(new Error('OperationError: no scope'));
    },
  } as unknown as GPUDevice;
  const raise = (filter: GPUErrorFilter, message: string) => {
    const scope = [...stack].reverse().find((s) => s.filter === filter);
    if (scope && !scope.error) scope.error = { message } as GPUError;
  };
  return { device, raise, depth: () => stack.length };
}

describe('call scopes', () => {
  it('give each of two overlapping calls its own errors', async () => {
    const { device, raise, depth } = scopeStack();
    // Call A records and submits, then awaits its scopes; call B starts during that await.
    pushCallScopes(device);
    raise('out-of-memory', 'A ran out of memory');
    const a = popCallScopes(device);
    pushCallScopes(device);
    raise('validation', 'B is invalid');
    const b = popCallScopes(device);
    expect(await a).toEqual({ validation: null, outOfMemory: { message: 'A ran out of memory' } });
    expect(await b).toEqual({ validation: { message: 'B is invalid' }, outOfMemory: null });
    expect(depth()).toBe(0);
  });
});
