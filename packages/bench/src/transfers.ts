/**
 * Transfer benchmarks between Node and a page of the benchmark's one Chromium.
 *
 * Channels through the runner's own server (what the CLI uses), on the runner page:
 *   GET    fetch().arrayBuffer(), fetch() streamed into a preallocated buffer, the runtime's
 *          `fetchBytes`, four parallel GETs; from memory (`offerBytes`) and from a file range
 *          (`offerFileRange`);
 *   POST   Uint8Array body, Blob body, the runtime's `postBytes`, four parallel Blob bodies.
 * Channels the runner server does not offer, on a second tab from a bench-only server:
 *   WebSocket binary frames both ways; `fetch` with a ReadableStream body (streaming upload);
 *   a Blob saved as a download into a directory Node reads (DevTools `Browser.setDownloadBehavior`).
 * And the loopback floor without Chromium: Node's HTTP client to Node's HTTP server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { BrowserRunner } from '@lorafuse/runner';
import { summarize, type Summary } from './stats.js';

/** One channel's figures (MB/s = 10^6 bytes per second), or why it could not be measured. */
export interface TransferResult {
  readonly channel: string;
  readonly direction: 'node→page' | 'page→node' | 'node→node';
  readonly bytes: number;
  readonly mbps?: Summary;
  readonly status: 'ok' | string;
  readonly note?: string;
}

const mbps = (bytes: number, ms: number) => bytes / (ms * 1e3);

async function measure(channel: string, direction: TransferResult['direction'], bytes: number, note: string | undefined, run: () => Promise<number[]>): Promise<TransferResult> {
  try {
    const times = await run();
    return { channel, direction, bytes, mbps: summarize(times.map((t) => mbps(bytes, t)), 'MB/s'), status: 'ok', ...(note ? { note } : {}) };
  } catch (e) {
    return { channel, direction, bytes, status: `failed: ${(e as Error).message.split('\n')[0]}`, ...(note ? { note } : {}) };
  }
}

/** Channels of the runner server, measured from the runner page. */
async function runnerChannels(runner: BrowserRunner, bytes: number, iterations: number, workDir: string): Promise<TransferResult[]> {
  const server = runner.server;
  const data = randomBytes(bytes);
  const file = join(workDir, 'transfer.bin');
  await writeFile(file, data);
  const memUrl = server.offerBytes('bench-mem', data);
  const fileUrl = server.offerFileRange('bench-file', { path: file, offset: 0, length: bytes });
  const quarter = bytes / 4;
  for (let p = 0; p < 4; p++) server.offerFileRange(`bench-file-${p}`, { path: file, offset: p * quarter, length: quarter });
  const down = (method: string, url: string) => () => runner.call<number[]>('benchDownload', { url, bytes, method, iterations }, { timeoutMs: 300_000 });
  const results: TransferResult[] = [];
  results.push(await measure('GET fetch().arrayBuffer() (offerBytes)', 'node→page', bytes, undefined, down('arrayBuffer', memUrl)));
  results.push(await measure('GET fetch().arrayBuffer() (offerFileRange)', 'node→page', bytes, undefined, down('arrayBuffer', fileUrl)));
  results.push(await measure('GET streamed into a preallocated buffer (offerFileRange)', 'node→page', bytes, undefined, down('stream-into', fileUrl)));
  results.push(await measure('GET runtime fetchBytes (offerFileRange)', 'node→page', bytes, 'what the CLI page uses', down('fetchBytes', fileUrl)));
  results.push(await measure('GET x4 parallel ranges (offerFileRange)', 'node→page', bytes, undefined, down('parallel-4', `${server.origin}/${server.token}/bytes/bench-file`)));
  for (const id of ['bench-mem', 'bench-file', 'bench-file-0', 'bench-file-1', 'bench-file-2', 'bench-file-3']) server.withdraw(id);

  let seq = 0;
  const up = (method: string, parts: number, reps: number, size = bytes) => async () => {
    const urls: string[][] = [];
    const uploads: Array<Promise<Uint8Array>> = [];
    for (let i = 0; i < reps; i++) {
      const row: string[] = [];
      for (let p = 0; p < parts; p++) {
        const id = `bench-up-${seq++}`;
        const size_ = parts === 1 ? size : Math.min(size, (p + 1) * Math.ceil(size / parts)) - p * Math.ceil(size / parts);
        uploads.push(server.expectUpload(id, size_));
        row.push(server.uploadUrl(id));
      }
      urls.push(row);
    }
    const times = await runner.call<number[]>('benchUpload', { urls, bytes: size, method }, { timeoutMs: 300_000 });
    await Promise.all(uploads);
    return times.slice(1); // the first is a warm-up
  };
  const small = Math.min(bytes, 8 * 2 ** 20);
  results.push(await measure('POST Uint8Array body', 'page→node', small, `${small / 2 ** 20} MiB: Chromium copies typed-array bodies slowly`, up('typed-array', 1, Math.min(4, iterations + 1), small)));
  results.push(await measure('POST Blob body', 'page→node', bytes, undefined, up('blob', 1, iterations + 1)));
  results.push(await measure('POST runtime postBytes', 'page→node', bytes, 'what the CLI page uses', up('postBytes', 1, iterations + 1)));
  results.push(await measure('POST x4 parallel Blob bodies', 'page→node', bytes, undefined, up('parallel-blob', 4, iterations + 1)));
  return results;
}

// ---- A bench-only server for the channels the runner server does not offer ----

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Minimal RFC 6455 server side: binary frames, no extensions, no fragmentation on send. */
class MiniWebSocket {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  onMessage: (payload: Buffer, binary: boolean) => void = () => {};

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      this.parse();
    });
  }

  private parse(): void {
    for (;;) {
      if (this.bufferedBytes < 2) return;
      const head = this.peek(Math.min(this.bufferedBytes, 14));
      const opcode = head[0]! & 0x0f;
      const masked = (head[1]! & 0x80) !== 0;
      let len = head[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (head.length < 4) return;
        len = head.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (head.length < 10) return;
        len = Number(head.readBigUInt64BE(2));
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (this.bufferedBytes < at + len) return;
      const frame = this.take(at + len);
      const payload = frame.subarray(at);
      if (masked) unmask(payload, frame.subarray(maskAt, maskAt + 4));
      if (opcode === 0x8) {
        this.socket.end();
        return;
      }
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) this.onMessage(payload, opcode !== 0x1);
    }
  }

  private peek(n: number): Buffer {
    return this.buffered.length === 1 || this.buffered[0]!.length >= n ? this.buffered[0]!.subarray(0, n) : Buffer.concat(this.buffered).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedBytes);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return all.subarray(0, n);
  }

  send(payload: Uint8Array, binary = true): void {
    const n = payload.byteLength;
    const head = n < 126 ? Buffer.from([binary ? 0x82 : 0x81, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    if (n >= 126) {
      head[0] = binary ? 0x82 : 0x81;
      if (n < 65536) {
        head[1] = 126;
        head.writeUInt16BE(n, 2);
      } else {
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(n), 2);
      }
    }
    this.socket.write(head);
    this.socket.write(payload);
  }
}

function unmask(payload: Buffer, mask: Buffer): void {
  const n = payload.length;
  const m = mask.readUInt32LE(0);
  const aligned = (payload.byteOffset & 3) === 0 ? n >> 2 : 0;
  if (aligned > 0) {
    const words = new Uint32Array(payload.buffer, payload.byteOffset, aligned);
    for (let i = 0; i < aligned; i++) words[i]! ^= m;
  }
  for (let i = aligned << 2; i < n; i++) payload[i]! ^= mask[i & 3]!;
}

const SIDE_PAGE_SCRIPT = String.raw`
const ws = { socket: null };
window.benchSide = {
  async wsOpen(path) {
    ws.socket = new WebSocket('ws://' + location.host + path);
    ws.socket.binaryType = 'arraybuffer';
    await new Promise((resolve, reject) => { ws.socket.onopen = resolve; ws.socket.onerror = () => reject(new Error('WebSocket failed')); });
    return true;
  },
  async wsDown(bytes, iterations) {
    const times = [];
    for (let i = -1; i < iterations; i++) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        let got = 0;
        ws.socket.onmessage = (e) => { got += e.data.byteLength; if (got >= bytes) resolve(); };
        ws.socket.send('down');
      });
      if (i >= 0) times.push(performance.now() - t0);
    }
    return times;
  },
  async wsUp(bytes, frame, iterations) {
    const data = new Uint8Array(bytes);
    const times = [];
    for (let i = -1; i < iterations; i++) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        ws.socket.onmessage = () => resolve();
        for (let o = 0; o < bytes; o += frame) ws.socket.send(data.subarray(o, Math.min(bytes, o + frame)));
      });
      if (i >= 0) times.push(performance.now() - t0);
    }
    return times;
  },
  async streamUpload(url, bytes) {
    const data = new Uint8Array(bytes);
    const body = new ReadableStream({ start(c) { for (let o = 0; o < bytes; o += 1 << 20) c.enqueue(data.subarray(o, Math.min(bytes, o + (1 << 20)))); c.close(); } });
    const t0 = performance.now();
    const r = await fetch(url, { method: 'POST', body, duplex: 'half' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return performance.now() - t0;
  },
  download(name, bytes) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([new Uint8Array(bytes)]));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 120000);
    return performance.now();
  },
};
window.benchSideReady = true;
`;

async function sideChannels(runner: BrowserRunner, bytes: number, iterations: number, workDir: string): Promise<TransferResult[]> {
  const token = randomBytes(16).toString('hex');
  const payload = randomBytes(bytes);
  let uploadDone: ((n: number) => void) | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const headers = { 'Cache-Control': 'no-store' };
    if (url === `/${token}/`) {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html' });
      res.end(`<!doctype html><body><script src="/${token}/side.js"></script></body>`);
    } else if (url === `/${token}/side.js`) {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
      res.end(SIDE_PAGE_SCRIPT);
    } else if (url === `/${token}/upload` && req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        res.writeHead(200, headers);
        res.end('ok');
        uploadDone?.(n);
      });
    } else {
      res.writeHead(403, headers);
      res.end();
    }
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (req.url !== `/${token}/ws` || typeof key !== 'string') {
      socket.destroy();
      return;
    }
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const ws = new MiniWebSocket(socket);
    let received = 0;
    const sink = new Uint8Array(bytes);
    ws.onMessage = (data, binary) => {
      if (!binary) {
        for (let o = 0; o < bytes; o += 4 << 20) ws.send(payload.subarray(o, Math.min(bytes, o + (4 << 20))));
        return;
      }
      sink.set(data.subarray(0, Math.min(data.length, bytes - received)), received);
      received += data.length;
      if (received >= bytes) {
        received = 0;
        ws.send(Buffer.from('ok'), false);
      }
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = runner.page.browser();
  const page = await browser.newPage();
  const results: TransferResult[] = [];
  const downloadDir = await mkdtemp(join(workDir, 'downloads-'));
  try {
    await page.goto(`${origin}/${token}/`);
    await page.waitForFunction('window.benchSideReady === true');
    const side = <T>(fn: string, ...args: unknown[]) => page.evaluate((f: string, a: unknown[]) => (window as unknown as { benchSide: Record<string, (...x: unknown[]) => unknown> }).benchSide[f]!(...a), fn, args) as Promise<T>;
    await side('wsOpen', `/${token}/ws`);
    results.push(await measure('WebSocket binary frames (4 MiB)', 'node→page', bytes, undefined, () => side<number[]>('wsDown', bytes, iterations)));
    results.push(await measure('WebSocket binary frames (1 MiB)', 'page→node', bytes, 'masked by the browser, unmasked in Node', () => side<number[]>('wsUp', bytes, 1 << 20, iterations)));
    results.push(
      await measure('POST ReadableStream body (streaming upload)', 'page→node', bytes, 'Chromium streams request bodies only over HTTP/2, which needs TLS', async () => {
        const times: number[] = [];
        for (let i = 0; i < iterations; i++) {
          const got = new Promise<number>((resolve) => (uploadDone = resolve));
          times.push(await side<number>('streamUpload', `${origin}/${token}/upload`, bytes));
          await got;
        }
        return times;
      }),
    );
    results.push(
      await measure('Blob saved as a download, read by Node', 'page→node', bytes, 'DevTools Browser.setDownloadBehavior; file written by the browser, then read', async () => {
        const cdp = await browser.target().createCDPSession();
        try {
          await cdp.send('Browser.setDownloadBehavior', { behavior: 'allowAndName', downloadPath: downloadDir, eventsEnabled: true });
          const times: number[] = [];
          for (let i = -1; i < iterations; i++) {
            const done = new Promise<string>((resolve, reject) => {
              const onProgress = (e: { guid: string; state: string }) => {
                if (e.state === 'inProgress') return;
                cdp.off('Browser.downloadProgress', onProgress);
                if (e.state === 'completed') resolve(e.guid);
                else reject(new Error(`download ${e.state}`));
              };
              cdp.on('Browser.downloadProgress', onProgress);
            });
            const t0 = performance.now();
            await side('download', `bench-${i + 1}.bin`, bytes);
            const guid = await done;
            const got = await readFile(join(downloadDir, guid));
            if (got.length !== bytes) throw new Error(`download has ${got.length} bytes`);
            if (i >= 0) times.push(performance.now() - t0);
            await rm(join(downloadDir, guid), { force: true });
          }
          return times;
        } finally {
          await cdp.detach().catch(() => {});
        }
      }),
    );
    results.push(
      await measure('Node HTTP client POST to Node HTTP server', 'node→node', bytes, 'loopback floor without Chromium', async () => {
        const times: number[] = [];
        for (let i = -1; i < iterations; i++) {
          const got = new Promise<number>((resolve) => (uploadDone = resolve));
          const t0 = performance.now();
          await new Promise<void>((resolve, reject) => {
            const req = request(`${origin}/${token}/upload`, { method: 'POST', headers: { 'Content-Length': bytes } }, (res) => {
              res.resume();
              res.on('end', () => resolve());
            });
            req.on('error', reject);
            req.end(payload);
          });
          await got;
          if (i >= 0) times.push(performance.now() - t0);
        }
        return times;
      }),
    );
  } finally {
    await page.close().catch(() => {});
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(downloadDir, { recursive: true, force: true });
  }
  return results;
}

/** Runs every transfer benchmark with `bytes` per transfer. */
export async function benchTransfers(options: { runner: BrowserRunner; bytes: number; iterations: number; workDir: string; log: (line: string) => void }): Promise<TransferResult[]> {
  const { runner, bytes, iterations, workDir, log } = options;
  const results = [...(await runnerChannels(runner, bytes, iterations, workDir)), ...(await sideChannels(runner, bytes, iterations, workDir))];
  for (const r of results) log(`transfer ${r.direction} ${r.channel}: ${r.mbps ? `${r.mbps.median} MB/s (min ${r.mbps.min}, max ${r.mbps.max})` : r.status}`);
  return results;
}
