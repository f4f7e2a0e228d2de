import shaderSource from './heatmap.wgsl';

/** Size in bytes of the WGSL `Params` uniform (mat3x3f: 3 padded columns, then 4 words). */
const PARAMS_BYTES = 64;

/** Render pipelines per device and target format; kept weakly so a destroyed device lets them go. */
const pipelines = new WeakMap<GPUDevice, Map<GPUTextureFormat, GPURenderPipeline>>();

function getPipeline(device: GPUDevice, format: GPUTextureFormat): GPURenderPipeline {
  let perDevice = pipelines.get(device);
  if (perDevice === undefined) {
    perDevice = new Map();
    pipelines.set(device, perDevice);
  }
  let pipeline = perDevice.get(format);
  if (pipeline === undefined) {
    const module = device.createShaderModule({ label: 'heatmap shader', code: shaderSource });
    const bindGroupLayout = device.createBindGroupLayout({
      label: 'heatmap bind group layout',
      entries: [
        { binding: 0, visibility: GPUShaderStage.FRAGMENT, buffer: { type: 'uniform', minBindingSize: PARAMS_BYTES } },
        { binding: 1, visibility: GPUShaderStage.FRAGMENT, buffer: { type: 'read-only-storage' } },
      ],
    });
    pipeline = device.createRenderPipeline({
      label: `heatmap pipeline (${format})`,
      layout: device.createPipelineLayout({ label: 'heatmap pipeline layout', bindGroupLayouts: [bindGroupLayout] }),
      vertex: { module, entryPoint: 'vs' },
      fragment: { module, entryPoint: 'fs', targets: [{ format }] },
      primitive: { topology: 'triangle-list' },
    });
    perDevice.set(format, pipeline);
  }
  return pipeline;
}

/** Parameters of {@link encodeHeatmap}. */
export interface EncodeHeatmapParams {
  /** The picture's target (a canvas's current texture, or any RENDER_ATTACHMENT texture), fully overwritten. */
  target: GPUTextureView;
  /** The target's format (e.g. `navigator.gpu.getPreferredCanvasFormat()`). */
  format: GPUTextureFormat;
  /** The grid: row-major f32 `[gridRows, gridCols]`, values ≥ 0 (a magnitude grid's max |m|). STORAGE usage. */
  cells: GPUBuffer;
  gridRows: number;
  gridCols: number;
  /**
   * Pixel (x, y), from the target's top left in pixels, → grid (column, row) in cells: a 3×3
   * column-major matrix in WGSL's `mat3x3f` layout (12 floats, each column padded to 4; what
   * wgpu-matrix's `mat3` holds).
   */
  gridFromPixel: Float32Array;
  /** The value drawn with the colour map's last colour (larger values clamp to it); > 0, or 0 for an all-zero grid. */
  maxValue: number;
  /** Prefix of the labels of the GPU objects created (default `'heatmap'`). */
  label?: string;
}

/**
 * Records one render pass drawing `cells` as a heatmap over all of `target` (see heatmap.wgsl for
 * the colour map; `heatmapRef` in `@lorafuse/kernels/reference` is its CPU twin). Returns what it
 * created, to `destroy()` once the commands are submitted.
 *
 * @throws RangeError for a grid that does not fit `cells`, a `gridFromPixel` of fewer than 12 floats,
 *   or a `maxValue` that is negative or not finite.
 */
export function encodeHeatmap(device: GPUDevice, encoder: GPUCommandEncoder, params: EncodeHeatmapParams): { destroy(): void } {
  const { gridRows, gridCols } = params;
  if (!Number.isSafeInteger(gridRows) || !Number.isSafeInteger(gridCols) || gridRows < 0 || gridCols < 0) throw new RangeError(`heatmap: grid size must be non-negative integers, got ${gridRows} × ${gridCols}.`);
  const bytes = gridRows * gridCols * 4;
  if (params.cells.size < bytes) throw new RangeError(`heatmap: buffer cells (${params.cells.label}) has ${params.cells.size} bytes, a ${gridRows} × ${gridCols} grid needs ${bytes}.`);
  if ((params.cells.usage & GPUBufferUsage.STORAGE) === 0) throw new TypeError(`heatmap: buffer cells (${params.cells.label}) lacks STORAGE usage.`);
  if (params.gridFromPixel.length < 12) throw new RangeError(`heatmap: gridFromPixel must hold a mat3x3f (12 floats), got ${params.gridFromPixel.length}.`);
  if (!Number.isFinite(params.maxValue) || params.maxValue < 0) throw new RangeError(`heatmap: maxValue must be finite and ≥ 0, got ${params.maxValue}.`);
  const label = params.label ?? 'heatmap';
  const uniforms = device.createBuffer({ label: `${label} params`, size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  const mapped = uniforms.getMappedRange();
  new Float32Array(mapped, 0, 12).set(params.gridFromPixel.subarray(0, 12));
  new Uint32Array(mapped, 48, 2).set([gridRows, gridCols]);
  new Float32Array(mapped, 56, 1)[0] = params.maxValue;
  uniforms.unmap();
  const pipeline = getPipeline(device, params.format);
  // An empty grid draws only background, but the binding still needs a word to point at.
  const cells = bytes > 0 ? params.cells : device.createBuffer({ label: `${label} empty grid`, size: 4, usage: GPUBufferUsage.STORAGE });
  const bindGroup = device.createBindGroup({
    label: `${label} bind group`,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uniforms } },
      { binding: 1, resource: { buffer: cells, offset: 0, size: Math.max(4, bytes) } },
    ],
  });
  const pass = encoder.beginRenderPass({ label: `${label} pass`, colorAttachments: [{ view: params.target, loadOp: 'clear', storeOp: 'store', clearValue: [0, 0, 0, 1] }] });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.draw(3);
  pass.end();
  return {
    destroy: () => {
      uniforms.destroy();
      if (cells !== params.cells) cells.destroy();
    },
  };
}
