import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

/** A byte range of a file on disk, offered to the page by {@link RunnerServer.offerFileRange}. */
export interface FileRange {
  /** Path of the file. */
  path: string;
  /** Byte offset of the first byte served. */
  offset: number;
  /** Number of bytes served. */
  length: number;
}

/** Options of {@link startRunnerServer}. */
export interface RunnerServerOptions {
  /** Path of the page bundle (ESM JavaScript) served as `/<token>/page.js`. Read on each request. */
  pageBundlePath: string;
  /** Title of the runner page. */
  title?: string;
}

/**
 * The token-guarded HTTP server between Node and the runner page. Only `http://127.0.0.1:<port>`
 * with the per-run token can reach anything, and only what was explicitly offered:
 *
 * - `GET /<token>/` the runner page; `GET /<token>/page.js` the page bundle;
 * - `GET /<token>/bytes/<id>` exactly the bytes offered under `id`;
 * - `POST /<token>/upload/<id>` one upload of exactly the expected length for `id`.
 *
 * Everything else is answered 403 (no or wrong token, other paths, ids not offered, foreign `Origin`
 * or `Host`).
 * Tensor bytes travel only here, never through DevTools-protocol messages.
 */
export interface RunnerServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The per-run random token (hex); the first path segment of every URL. */
  readonly token: string;
  /** URL of the runner page. */
  readonly pageUrl: string;
  /**
   * Serves `length` bytes of the file at `path` from `offset` under `id`; returns the absolute URL.
   * The file is opened per request and streamed; a file shorter than the range gives HTTP 500.
   * Offering an id again replaces the earlier offer.
   */
  offerFileRange(id: string, range: FileRange): string;
  /** Serves `bytes` (kept by reference until {@link withdraw}) under `id`; returns the absolute URL. */
  offerBytes(id: string, bytes: Uint8Array): string;
  /** Stops serving `id` (and drops the reference to offered bytes). Unknown ids are ignored. */
  withdraw(id: string): void;
  /**
   * Expects one upload of exactly `expectedLength` bytes to {@link uploadUrl}(id). The promise
   * resolves with the bytes; it rejects when the upload has the wrong length (the page gets 413 if
   * too long, 400 if too short), when {@link cancelUpload} is called, or when the server closes.
   */
  expectUpload(id: string, expectedLength: number): Promise<Uint8Array>;
  /** Absolute URL the page POSTs the upload for `id` to. */
  uploadUrl(id: string): string;
  /** Stops expecting an upload for `id`; its promise rejects. */
  cancelUpload(id: string): void;
  /** Stops the server, drops open connections and rejects pending uploads. Idempotent. */
  close(): Promise<void>;
}

type Offer = { kind: 'file'; range: FileRange } | { kind: 'bytes'; bytes: Uint8Array };

interface PendingUpload {
  length: number;
  resolve(bytes: Uint8Array): void;
  reject(err: Error): void;
}

const ID_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;

function checkId(id: string): void {
  if (!ID_PATTERN.test(id) || id === '.' || id === '..') {
    throw new TypeError(`Invalid id ${JSON.stringify(id)}: use 1-200 characters of [A-Za-z0-9._:-].`);
  }
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${value}.`);
}

const COMMON_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // Same-origin only: no Access-Control-Allow-Origin header is ever sent, so other origins can
  // neither read responses nor pass a preflight; these also make the page cross-origin isolated
  // (finer performance.now()).
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

function send(res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function refuse(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
  // Discard any refused body and close the connection once the answer is sent.
  send(res, status, body, { Connection: 'close' });
  req.resume();
}

function pageHtml(token: string, title: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title.replace(/[<>&"]/g, '')}</title></head>
<body><script type="module" src="/${token}/page.js"></script></body></html>
`;
}

/** Starts a {@link RunnerServer} on 127.0.0.1 with an ephemeral port and a fresh random token. */
export async function startRunnerServer(options: RunnerServerOptions): Promise<RunnerServer> {
  const token = randomBytes(24).toString('hex');
  const tokenBytes = Buffer.from(token);
  const offers = new Map<string, Offer>();
  const uploads = new Map<string, PendingUpload>();
  const title = options.title ?? 'lorafuse runner';
  let origin = '';
  let host = '';
  let closed: Promise<void> | undefined;

  function hasToken(segment: string | undefined): boolean {
    if (segment === undefined) return false;
    const b = Buffer.from(segment);
    return b.length === tokenBytes.length && timingSafeEqual(b, tokenBytes);
  }

  async function serveOffer(req: IncomingMessage, res: ServerResponse, offer: Offer): Promise<void> {
    const headers = { ...COMMON_HEADERS, 'Content-Type': 'application/octet-stream' };
    if (offer.kind === 'bytes') {
      const { bytes } = offer;
      res.writeHead(200, { ...headers, 'Content-Length': bytes.byteLength });
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return;
    }
    const { path, offset, length } = offer.range;
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      send(res, 500, `cannot read offered file: ${(err as Error).message}`);
      return;
    }
    if (offset + length > size) {
      send(res, 500, `offered range [${offset}, ${offset + length}) is past the end of the file (${size} bytes)`);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': length });
    if (length === 0 || req.method === 'HEAD') {
      res.end();
      return;
    }
    try {
      // 1 MiB reads: the default 64 KiB chunks cost a third of the GET throughput (packages/bench).
      await pipeline(createReadStream(path, { start: offset, end: offset + length - 1, highWaterMark: 1 << 20 }), res);
    } catch {
      res.destroy();
    }
  }

  function receiveUpload(req: IncomingMessage, res: ServerResponse, id: string): void {
    const pending = uploads.get(id);
    if (pending === undefined) {
      refuse(req, res, 403, 'forbidden');
      return;
    }
    uploads.delete(id); // one upload per expectation
    const fail = (status: number, why: string): void => {
      pending.reject(new Error(`Upload ${id}: ${why}`));
      refuse(req, res, status, why);
    };
    const declared = req.headers['content-length'];
    if (declared !== undefined) {
      const n = Number(declared);
      if (n > pending.length) return fail(413, `body of ${n} bytes is longer than the expected ${pending.length}`);
      if (n < pending.length) return fail(400, `body of ${n} bytes is shorter than the expected ${pending.length}`);
    }
    const bytes = new Uint8Array(pending.length);
    let received = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (received + chunk.length > pending.length) {
        failed = true;
        fail(413, `body is longer than the expected ${pending.length} bytes`);
        return;
      }
      bytes.set(chunk, received);
      received += chunk.length;
    });
    req.on('end', () => {
      if (failed) return;
      if (received !== pending.length) {
        failed = true;
        fail(400, `body of ${received} bytes is shorter than the expected ${pending.length}`);
        return;
      }
      pending.resolve(bytes);
      send(res, 200, 'ok');
    });
    req.on('error', (err) => {
      if (failed) return;
      failed = true;
      pending.reject(new Error(`Upload ${id} failed: ${err.message}`));
    });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    // Reject DNS-rebinding (foreign Host) and cross-origin requests before looking at the path.
    if (req.headers.host !== host) return refuse(req, res, 403, 'forbidden');
    const reqOrigin = req.headers.origin;
    if (reqOrigin !== undefined && reqOrigin !== origin) return refuse(req, res, 403, 'forbidden');
    const fetchSite = req.headers['sec-fetch-site'];
    if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return refuse(req, res, 403, 'forbidden');

    // The path is matched segment by segment, never decoded or resolved against the file system.
    const path = url.split('?', 1)[0] ?? '';
    const parts = path.split('/');
    if (parts[0] !== '' || !hasToken(parts[1])) return refuse(req, res, 403, 'forbidden');
    const rest = parts.slice(2);
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';

    if (rest.length === 1 && rest[0] === '') {
      if (!isGet) return refuse(req, res, 405, 'method not allowed');
      const html = pageHtml(token, title);
      return send(res, 200, method === 'HEAD' ? '' : html, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(html)),
        'Content-Security-Policy': "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'",
      });
    }
    if (rest.length === 1 && rest[0] === 'page.js') {
      if (!isGet) return refuse(req, res, 405, 'method not allowed');
      stat(options.pageBundlePath).then(
        (st) => {
          res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': st.size });
          if (method === 'HEAD') return void res.end();
          pipeline(createReadStream(options.pageBundlePath), res).catch(() => res.destroy());
        },
        (err: Error) => send(res, 500, `cannot read page bundle: ${err.message}`),
      );
      return;
    }
    if (rest.length === 2 && rest[0] === 'bytes') {
      const offer = offers.get(rest[1] ?? '');
      if (offer === undefined) return refuse(req, res, 403, 'forbidden');
      if (!isGet) return refuse(req, res, 405, 'method not allowed');
      void serveOffer(req, res, offer);
      return;
    }
    if (rest.length === 2 && rest[0] === 'upload') {
      if (method !== 'POST') return refuse(req, res, uploads.has(rest[1] ?? '') ? 405 : 403, 'forbidden');
      return receiveUpload(req, res, rest[1] ?? '');
    }
    return refuse(req, res, 403, 'forbidden');
  }

  const server = createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  host = `127.0.0.1:${port}`;
  origin = `http://${host}`;
  const base = `${origin}/${token}`;

  return {
    origin,
    token,
    pageUrl: `${base}/`,
    offerFileRange(id, range) {
      checkId(id);
      checkSize('offset', range.offset);
      checkSize('length', range.length);
      offers.set(id, { kind: 'file', range: { path: range.path, offset: range.offset, length: range.length } });
      return `${base}/bytes/${id}`;
    },
    offerBytes(id, bytes) {
      checkId(id);
      offers.set(id, { kind: 'bytes', bytes });
      return `${base}/bytes/${id}`;
    },
    withdraw(id) {
      offers.delete(id);
    },
    expectUpload(id, expectedLength) {
      checkId(id);
      checkSize('expectedLength', expectedLength);
      if (closed !== undefined) return Promise.reject(new Error('The runner server is closed.'));
      uploads.get(id)?.reject(new Error(`Upload ${id} was replaced by a newer expectation.`));
      const promise = new Promise<Uint8Array>((resolve, reject) => {
        uploads.set(id, { length: expectedLength, resolve, reject });
      });
      // Rejections are for the caller; do not let an unobserved one crash the process.
      promise.catch(() => {});
      return promise;
    },
    uploadUrl(id) {
      checkId(id);
      return `${base}/upload/${id}`;
    },
    cancelUpload(id) {
      const pending = uploads.get(id);
      if (pending === undefined) return;
      uploads.delete(id);
      pending.reject(new Error(`Upload ${id} was cancelled.`));
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const [id, pending] of uploads) pending.reject(new Error(`Upload ${id} did not arrive: the runner server closed.`));
        uploads.clear();
        offers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
