import { describe, expect, it } from 'vitest';
import { isSoftwareAdapter } from '../src/index.js';

describe('isSoftwareAdapter', () => {
  const info = { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false };
  it('recognises SwiftShader, llvmpipe and the fallback flag', () => {
    expect(isSoftwareAdapter({ ...info, vendor: 'google', architecture: 'swiftshader' })).toBe(true);
    expect(isSoftwareAdapter({ ...info, description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
    expect(isSoftwareAdapter({ ...info, isFallbackAdapter: true })).toBe(true);
    expect(isSoftwareAdapter({ ...info, vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' })).toBe(false);
  });
});
