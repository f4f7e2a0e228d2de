/**
 * Compute pipelines cached per device (STYLE: `WeakMap<GPUDevice, Map<key, GPUComputePipeline>>`,
 * key = kernel + override values, never shapes), with the four-binding layout every lorafuse kernel
 * uses: a uniform of parameters, then its storage buffers.
 */
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** How one kernel's pipeline is built. */
export interface KernelPipelineSpec {
  /** Kernel name, used in labels and the cache key. */
  readonly kernel: string;
  readonly code: string;
  readonly entryPoint: string;
  readonly constants: Readonly<Record<string, number>>;
  /** Size of the parameter uniform at binding 0. */
  readonly paramsBytes: number;
  /** Types of the storage bindings 1, 2, ... (three for the merge and compare kernels). */
  readonly storage: readonly GPUBufferBindingType[];
}

/** The cached pipeline for `spec` on `device`, created on first use. */
export function kernelPipeline(device: GPUDevice, spec: KernelPipelineSpec): GPUComputePipeline {
  const key = `${spec.kernel}:${spec.entryPoint}:${Object.entries(spec.constants).map(([k, v]) => `${k}=${v}`).join(',')}`;
  let perDevice = pipelineCache.get(device);
  if (perDevice === undefined) {
    perDevice = new Map();
    pipelineCache.set(device, perDevice);
  }
  let pipeline = perDevice.get(key);
  if (pipeline === undefined) {
    const module = device.createShaderModule({ label: `${spec.kernel} shader`, code: spec.code });
    const bindGroupLayout = device.createBindGroupLayout({
      label: `${spec.kernel} bind group layout`,
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', minBindingSize: spec.paramsBytes } },
        ...spec.storage.map((type, i) => ({ binding: i + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type } })),
      ],
    });
    pipeline = device.createComputePipeline({
      label: `${spec.kernel} pipeline (${key})`,
      layout: device.createPipelineLayout({ label: `${spec.kernel} pipeline layout`, bindGroupLayouts: [bindGroupLayout] }),
      compute: { module, entryPoint: spec.entryPoint, constants: { ...spec.constants } },
    });
    perDevice.set(key, pipeline);
  }
  return pipeline;
}
