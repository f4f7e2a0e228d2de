import { startDawnDevice } from '@lorafuse/cli/devices';
import { WeightKernels } from '@lorafuse/kernels';
const dawn = await startDawnDevice(process.env, '');
const device = dawn.device;
const kernels = await WeightKernels.prepare(device);
function buf(arr) { const b = device.createBuffer({ size: Math.max(16, Math.ceil(arr.byteLength/16)*16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }); device.queue.writeBuffer(b, 0, arr); return b; }
const rnd = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.05; return a; };
const [rows, cols, rank] = process.env.BIG ? [768, 2304, 8] : [8, 8, 8];
const w = buf(rnd(rows * cols)); const a = buf(rnd(rank * rows)); const b = buf(rnd(cols * rank));
const view = { binding: { buffer: w }, rows, cols, layout: 'in-out', element: 'f32' };
const end = Date.now() + 6000;
while (Date.now() < end) { await kernels.merge(view, [{ a: { buffer: a }, b: { buffer: b }, rank, scale: 2 }]); await device.queue.onSubmittedWorkDone(); }
process.exit(0);
