/**
 * The kernel benchmarks on Dawn inside Node (the CLI's `--device dawn` device): the same timing code
 * as the page (kernel-timing.ts), no browser. On a machine with a GPU this is how the kernels' own
 * figures are taken with the card's name; here it shows Dawn's SwiftShader next to Chromium's.
 */
import { startDawnDevice, type DawnDevice } from '@lorafuse/cli/devices';
import { timeCompareKernel, timeMergeKernel } from './kernel-timing.js';
import { gbps, type KernelShape } from './kernels.js';
import { mapSummary, summarize, type Summary } from './stats.js';

/** One shape on Dawn. */
export interface DawnKernelFigure {
  readonly shape: string;
  readonly wallMs: Summary;
  readonly gbps: Summary;
  /** From timestamp queries, where the adapter has them. */
  readonly gpuGbps: Summary | null;
}

/** The kernel figures on Dawn, or why there are none. */
export type DawnKernelResults =
  | { readonly adapter: string; readonly merge: readonly DawnKernelFigure[]; readonly compare: readonly DawnKernelFigure[] }
  | { readonly status: string };

/** Times the merge kernel on `shapes` and the compare kernel on `compareElements` with Dawn. */
export async function benchDawnKernels(options: { shapes: readonly KernelShape[]; compareShapes: ReadonlyArray<{ id: string; elements: number }>; iterations: number; log: (line: string) => void }): Promise<DawnKernelResults> {
  let dawn: DawnDevice;
  try {
    dawn = await startDawnDevice(process.env, '');
  } catch (e) {
    return { status: `Dawn did not start: ${(e as Error).message}` };
  }
  try {
    options.log(`Dawn in Node: ${dawn.description}`);
    const merge: DawnKernelFigure[] = [];
    for (const shape of options.shapes) {
      const n = shape.rows * shape.cols > 8e6 ? Math.max(3, Math.ceil(options.iterations / 2)) : options.iterations;
      const r = await timeMergeKernel(dawn.device, { kind: 'merge', rows: shape.rows, cols: shape.cols, rank: shape.rank, orientation: shape.orientation, iterations: n });
      const g = gbps(shape.rows * shape.cols * 8);
      const wall = summarize(r.wallMs, 'ms');
      const gpu = r.gpuMs ? summarize(r.gpuMs, 'ms') : null;
      merge.push({ shape: `${shape.id} ${shape.orientation}`, wallMs: wall, gbps: mapSummary(wall, 'GB/s', g), gpuGbps: gpu ? mapSummary(gpu, 'GB/s', g) : null });
      options.log(`kernel ${shape.id} ${shape.orientation} on Dawn: ${merge.at(-1)!.gbps.median} GB/s (wall)${gpu ? `, ${merge.at(-1)!.gpuGbps!.median} GB/s (timestamps)` : ''}`);
    }
    const compare: DawnKernelFigure[] = [];
    for (const shape of options.compareShapes) {
      const n = shape.elements > 8e6 ? Math.max(3, Math.ceil(options.iterations / 2)) : options.iterations;
      const r = await timeCompareKernel(dawn.device, { count: shape.elements, iterations: n });
      if (r === null) break;
      const wall = summarize(r.wallMs, 'ms');
      compare.push({ shape: shape.id, wallMs: wall, gbps: mapSummary(wall, 'GB/s', gbps(shape.elements * 8)), gpuGbps: null });
      options.log(`compare ${shape.id} on Dawn: ${compare.at(-1)!.gbps.median} GB/s (wall)`);
    }
    return { adapter: dawn.description, merge, compare };
  } finally {
    dawn.destroy();
  }
}
