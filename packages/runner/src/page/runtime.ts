/// <reference types="@webgpu/types" />
/**
 * Browser side of the runner: creates the page's one `GPUDevice` when the page entry calls
 * `startPage` (with the entry's own device factory), tells Node when it is ready or lost, moves bytes
 * over HTTP to and from the runner server, and installs the page API that Node calls by name. No Node
 * APIs here.
 */
import { REPORT_BINDING, TRANSFER_BROKEN, type AdapterReport, type PageReport } from './protocol.js';

/** A function Node can call with `runner.call(name, args)`; args and result are small JSON. */
export type PageFunction = (args: any) => unknown;

function report(message: PageReport): void {
  const fn = (globalThis as Record<string, unknown>)[REPORT_BINDING];
  if (typeof fn === 'function') void Promise.resolve((fn as (m: PageReport) => unknown)(message)).catch(() => {});
}

function limitsRecord(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // WebIDL attributes are enumerable getters on the prototype, so for..in sees them all.
  for (const key in limits) {
    const value = (limits as unknown as Record<string, unknown>)[key];
    if (typeof value === 'number') out[key] = value;
  }
  return out;
}

function describe(adapter: GPUAdapter, device: GPUDevice): AdapterReport {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacyFallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? legacyFallback ?? false),
    features: [...adapter.features].sort(),
    limits: limitsRecord(adapter.limits),
    deviceLimits: limitsRecord(device.limits),
    deviceFeatures: [...device.features].sort(),
  };
}

/** Options of {@link startPage}. */
export interface StartPageOptions {
  /**
   * Creates the page's one device from the adapter the runtime requested: the page entry decides
   * its limits and features (lorafuse's pages pass `requestLorafuseDevice` of `@lorafuse/kernels`).
   */
  requestDevice: (adapter: GPUAdapter) => Promise<GPUDevice>;
}

async function createDevice(requestDevice: StartPageOptions['requestDevice']): Promise<GPUDevice> {
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    throw new Error('navigator.gpu is missing: WebGPU is disabled in this browser or the page is not a secure context.');
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (adapter === null) throw new Error('navigator.gpu.requestAdapter() returned no adapter.');
  const device = await requestDevice(adapter);
  void device.lost.then((info) => report({ type: 'device-lost', reason: String(info.reason), message: info.message }));
  device.addEventListener('uncapturederror', (event) => {
    report({ type: 'uncaptured-error', message: (event as GPUUncapturedErrorEvent).error.message });
  });
  report({ type: 'ready', adapter: describe(adapter, device) });
  return device;
}

let devicePromise: Promise<GPUDevice> | undefined;

/**
 * Starts the page: requests the WebGPU adapter, creates the page's one `GPUDevice` with
 * `options.requestDevice`, and tells Node when it is ready, when it failed to start and when it is
 * lost. Page entries call it first, once; importing the runtime starts nothing, so that the entry,
 * not the runtime, decides the device's limits.
 *
 * @throws Error when called a second time (a page has one device).
 */
export function startPage(options: StartPageOptions): void {
  if (devicePromise !== undefined) throw new Error('startPage() was already called: a runner page starts once, with one device.');
  devicePromise = createDevice(options.requestDevice);
  devicePromise.catch((err: unknown) => {
    report({ type: 'init-failed', code: 'NO_WEBGPU_ADAPTER', message: err instanceof Error ? err.message : String(err) });
  });
}

/**
 * The page's `GPUDevice`, created once by {@link startPage} with the page entry's device factory.
 * Rejects when the page has no WebGPU adapter or device, and when `startPage` was never called.
 */
export function getDevice(): Promise<GPUDevice> {
  return devicePromise ?? Promise.reject(new Error('getDevice() was called before startPage(): the page entry must call startPage({ requestDevice }) first.'));
}

/**
 * Downloads `url` (a URL from the runner server's `offerFileRange` / `offerBytes`) as raw bytes.
 * With a `Content-Length` (the runner server always sends one) the body is streamed straight into
 * one buffer of that size, which is faster than `arrayBuffer()` (no concatenation of the chunks).
 * Throws on a non-2xx answer or when fewer/more bytes arrive than `Content-Length` said.
 */
export function fetchBytes(url: string): Promise<Uint8Array<ArrayBuffer>> {
  return markBroken('download', () => download(url));
}

async function download(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`GET ${url} failed: HTTP ${response.status} ${await response.text()}`);
  const declared = response.headers.get('Content-Length');
  const expected = declared === null ? Number.NaN : Number(declared);
  if (!Number.isSafeInteger(expected) || response.body === null) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (declared !== null && expected !== bytes.byteLength) throw new Error(`GET ${url}: got ${bytes.byteLength} bytes, Content-Length said ${declared}.`);
    return bytes;
  }
  const out = new Uint8Array(expected);
  const reader = response.body.getReader();
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (got + value.byteLength > expected) {
      await reader.cancel().catch(() => {});
      throw new Error(`GET ${url}: more bytes than Content-Length said (${declared}).`);
    }
    out.set(value, got);
    got += value.byteLength;
  }
  if (got !== expected) throw new Error(`GET ${url}: got ${got} bytes, Content-Length said ${declared}.`);
  return out;
}

/**
 * Uploads `bytes` to `url` (the runner server's `uploadUrl(id)`) as one POST with a Blob body
 * (measured about 10x faster than a typed-array body in Chromium). Throws on a non-2xx answer.
 */
export async function postBytes(url: string, bytes: Uint8Array | ArrayBufferView | ArrayBuffer): Promise<void> {
  const part = bytes instanceof ArrayBuffer ? bytes : new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  const response = await markBroken(`upload of ${part.byteLength} bytes`, () => fetch(url, { method: 'POST', body: new Blob([part], { type: 'application/octet-stream' }) }));
  if (!response.ok) throw new Error(`POST ${url} failed: HTTP ${response.status} ${await response.text()}`);
}

/**
 * Runs a transfer; fetch's TypeError (the network failed: no HTTP answer came, or the body stopped)
 * becomes an error opening with {@link TRANSFER_BROKEN}, which Node tells from the page's own failures.
 */
async function markBroken<T>(what: string, transfer: () => Promise<T>): Promise<T> {
  try {
    return await transfer();
  } catch (e) {
    if (e instanceof TypeError) throw new Error(`${TRANSFER_BROKEN}the ${what} failed (${e.message})`);
    throw e;
  }
}

/**
 * Installs `api`'s functions on `globalThis.lorafuse`, where Node's `runner.call(name, args)` finds
 * them. Later calls add to (or replace entries of) what earlier calls installed.
 */
export function registerPageApi(api: Record<string, PageFunction>): void {
  const g = globalThis as { lorafuse?: Record<string, PageFunction> };
  g.lorafuse = Object.assign(g.lorafuse ?? {}, api);
}
