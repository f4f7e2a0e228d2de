/// <reference types="@webgpu/types" />
/**
 * The benchmark page (browser code, bundled by build-page.mjs): times the LoRA merge kernel,
 * `copyBufferToBuffer` and the compare kernel on the page's device (kernel-timing.ts), and moves bytes
 * between Node and the page over each channel the runner server offers. Only sizes, URLs and timings cross DevTools.
 */
import { requestLorafuseDevice } from '@lorafuse/kernels';
import { fetchBytes, getDevice, postBytes, registerPageApi, startPage } from '@lorafuse/runner/page';
import { timeCompareKernel, timeMergeKernel, type BenchKernelArgs } from '../kernel-timing.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'lorafuse bench device') });

/** Arguments of `benchDownload` / `benchUpload`. */
export interface BenchTransferArgs {
  url: string;
  bytes: number;
  method: string;
}


/** Downloads `url` `iterations` times with the given method; returns ms per download. */
async function benchDownload(args: BenchTransferArgs & { iterations: number }): Promise<number[]> {
  const times: number[] = [];
  for (let i = -1; i < args.iterations; i++) {
    const t0 = performance.now();
    let got: number;
    if (args.method === 'fetchBytes') {
      got = (await fetchBytes(args.url)).byteLength;
    } else if (args.method === 'arrayBuffer') {
      got = (await (await fetch(args.url, { cache: 'no-store' })).arrayBuffer()).byteLength;
    } else if (args.method === 'stream-into') {
      const response = await fetch(args.url, { cache: 'no-store' });
      const out = new Uint8Array(args.bytes);
      const reader = response.body!.getReader();
      got = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        out.set(value, got);
        got += value.byteLength;
      }
    } else if (args.method.startsWith('parallel-')) {
      const parts = Number(args.method.slice('parallel-'.length));
      const sizes = await Promise.all(Array.from({ length: parts }, async (_, p) => (await (await fetch(`${args.url}-${p}`, { cache: 'no-store' })).arrayBuffer()).byteLength));
      got = sizes.reduce((x, y) => x + y, 0);
    } else {
      throw new Error(`unknown download method ${args.method}`);
    }
    if (got !== args.bytes) throw new Error(`download ${args.method}: got ${got} bytes, expected ${args.bytes}`);
    if (i >= 0) times.push(performance.now() - t0);
  }
  return times;
}

let uploadSource: Uint8Array<ArrayBuffer> | undefined;
function source(bytes: number): Uint8Array<ArrayBuffer> {
  if (uploadSource?.byteLength !== bytes) {
    uploadSource = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i += 4096) uploadSource[i] = i & 0xff;
  }
  return uploadSource;
}

/** Uploads `bytes` once to each of `urls` (one per repetition) with the given method; returns ms per upload. */
async function benchUpload(args: { urls: string[][]; bytes: number; method: string }): Promise<number[]> {
  const data = source(args.bytes);
  const times: number[] = [];
  for (const urls of args.urls) {
    const t0 = performance.now();
    if (args.method === 'postBytes') {
      await postBytes(urls[0]!, data);
    } else if (args.method === 'typed-array') {
      const r = await fetch(urls[0]!, { method: 'POST', body: data });
      if (!r.ok) throw new Error(`POST typed array: HTTP ${r.status}`);
    } else if (args.method === 'blob') {
      const r = await fetch(urls[0]!, { method: 'POST', body: new Blob([data]) });
      if (!r.ok) throw new Error(`POST Blob: HTTP ${r.status}`);
    } else if (args.method === 'parallel-blob') {
      const part = Math.ceil(args.bytes / urls.length);
      const answers = await Promise.all(urls.map((url, p) => fetch(url, { method: 'POST', body: new Blob([data.subarray(p * part, Math.min(args.bytes, (p + 1) * part))]) })));
      for (const r of answers) if (!r.ok) throw new Error(`POST Blob part: HTTP ${r.status}`);
    } else {
      throw new Error(`unknown upload method ${args.method}`);
    }
    times.push(performance.now() - t0);
  }
  return times;
}

registerPageApi({
  benchKernel: async (args: BenchKernelArgs) => timeMergeKernel(await getDevice(), args),
  benchCompare: async (args: { count: number; iterations: number }) => timeCompareKernel(await getDevice(), args),
  benchDownload,
  benchUpload,
});
