/**
 * Device creation with the limits the kernels need for real model tensors.
 */

/**
 * Limits raised to the adapter's maximum. GPT-2's wte in f32 is 154 MB, above WebGPU's default
 * 128 MiB `maxStorageBufferBindingSize`; with the adapter's limits it binds whole where the adapter
 * allows, and the kernels chunk by rows where it does not.
 */
export const LORAFUSE_RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxBindGroups',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Features enabled when the adapter has them (none is required by any kernel). */
export const LORAFUSE_OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'timestamp-query'];

/**
 * Requests a `GPUDevice` from `adapter` with {@link LORAFUSE_RAISED_LIMITS} set to the adapter's own
 * values and {@link LORAFUSE_OPTIONAL_FEATURES} that the adapter supports.
 */
export function requestLorafuseDevice(adapter: GPUAdapter, label = 'lorafuse device'): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of LORAFUSE_RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const requiredFeatures = LORAFUSE_OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  return adapter.requestDevice({ label, requiredLimits, requiredFeatures });
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|software|microsoft basic render/i;

/** The parts of `GPUAdapterInfo` that tell a software adapter from real hardware. */
export interface AdapterIdentity {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter?: boolean;
}

/**
 * Whether an adapter is a software rasteriser (SwiftShader, llvmpipe, ...) rather than a GPU: the
 * kernels shape their work differently there, and the CLI prefers its CPU executor.
 */
export function isSoftwareAdapter(info: AdapterIdentity): boolean {
  return info.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}
