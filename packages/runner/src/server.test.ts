/** The runner server answers only with the token and only what was offered or expected. */
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRunnerServer, type RunnerServer } from './server.js';

let server: RunnerServer;
let dir: string;
let filePath: string;
const fileBytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 0xff);

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw HTTP request (no URL normalisation, unlike fetch), so traversal paths reach the server as written. */
function raw(path: string, options: { method?: string; body?: Uint8Array; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const url = new URL(server.origin);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: { ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close the connection while a refused body is still being sent.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') resolve({ status: -1, headers: {}, body: Buffer.alloc(0) });
      else reject(err);
    });
    if (options.body !== undefined) req.end(Buffer.from(options.body));
    else req.end();
  });
}

const tokenPath = (rest: string): string => `/${server.token}/${rest}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorafuse-server-test-'));
  filePath = join(dir, 'data.bin');
  await writeFile(filePath, fileBytes);
  const bundle = join(dir, 'page.js');
  await writeFile(bundle, 'console.log("page");\n');
  server = await startRunnerServer({ pageBundlePath: bundle });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('runner server', () => {
  it('listens on 127.0.0.1 with a long random token', () => {
    expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.token).toMatch(/^[0-9a-f]{48}$/);
    expect(server.pageUrl).toBe(`${server.origin}/${server.token}/`);
  });

  it('serves the page and the bundle with the token', async () => {
    const page = await raw(tokenPath(''));
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain(`<script type="module" src="/${server.token}/page.js"></script>`);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await raw(tokenPath('page.js'));
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.body.toString()).toBe('console.log("page");\n');
  });

  it('403 without the token or with a wrong one', async () => {
    server.offerBytes('open', new Uint8Array([1, 2, 3]));
    expect((await raw('/')).status).toBe(403);
    expect((await raw('/page.js')).status).toBe(403);
    expect((await raw('/bytes/open')).status).toBe(403);
    expect((await raw(`/${'0'.repeat(48)}/bytes/open`)).status).toBe(403);
    expect((await raw(`/${server.token.slice(0, -1)}/bytes/open`)).status).toBe(403);
    expect((await raw(`/${server.token}x/bytes/open`)).status).toBe(403);
    expect((await raw(`/x/${server.token}/bytes/open`)).status).toBe(403);
  });

  it('403 for ids not offered, withdrawn ids and traversal attempts', async () => {
    expect((await raw(tokenPath('bytes/nothing'))).status).toBe(403);
    server.offerBytes('gone', new Uint8Array([1]));
    server.withdraw('gone');
    expect((await raw(tokenPath('bytes/gone'))).status).toBe(403);
    server.offerFileRange('range', { path: filePath, offset: 0, length: 10 });
    for (const path of [
      'bytes/../page.js',
      'bytes/..',
      'bytes/%2e%2e%2fdata.bin',
      'bytes/range/../../etc/passwd',
      `bytes/${encodeURIComponent(filePath)}`,
      'bytes/range%00',
      'bytes/RANGE',
    ]) {
      expect((await raw(tokenPath(path))).status, path).toBe(403);
    }
    expect(() => server.offerBytes('../x', new Uint8Array(1))).toThrow(TypeError);
    expect(() => server.offerBytes('a/b', new Uint8Array(1))).toThrow(TypeError);
    expect(() => server.offerBytes('..', new Uint8Array(1))).toThrow(TypeError);
  });

  it('403 for a foreign Origin or Host (cross-origin pages, DNS rebinding)', async () => {
    server.offerBytes('o', new Uint8Array([9]));
    expect((await raw(tokenPath('bytes/o'), { headers: { Origin: 'http://evil.example' } })).status).toBe(403);
    expect((await raw(tokenPath('bytes/o'), { headers: { Host: 'evil.example' } })).status).toBe(403);
    expect((await raw(tokenPath('bytes/o'), { headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
    const ok = await raw(tokenPath('bytes/o'), { headers: { Origin: server.origin, 'Sec-Fetch-Site': 'same-origin' } });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBeUndefined();
    expect(ok.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect((await raw(tokenPath('bytes/o'), { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } })).status).toBe(403);
  });

  it('serves exactly the offered byte range of a file', async () => {
    for (const [offset, length] of [[0, 10_000], [1234, 4321], [9999, 1], [5000, 0], [0, 1]] as const) {
      const url = server.offerFileRange(`r${offset}-${length}`, { path: filePath, offset, length });
      const res = await raw(new URL(url).pathname);
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(length));
      expect(new Uint8Array(res.body)).toEqual(fileBytes.subarray(offset, offset + length));
    }
  });

  it('a range past the end of the file is a server error, not a short body', async () => {
    const url = server.offerFileRange('past', { path: filePath, offset: 9_000, length: 2_000 });
    expect((await raw(new URL(url).pathname)).status).toBe(500);
  });

  it('serves offered in-memory bytes, including a subarray view', async () => {
    const backing = Uint8Array.from({ length: 100 }, (_, i) => i);
    const url = server.offerBytes('mem', backing.subarray(10, 20));
    const res = await raw(new URL(url).pathname);
    expect([...res.body]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('accepts an upload of exactly the expected length', async () => {
    const upload = server.expectUpload('up-ok', 5);
    const res = await raw(new URL(server.uploadUrl('up-ok')).pathname, { method: 'POST', body: new Uint8Array([5, 4, 3, 2, 1]) });
    expect(res.status).toBe(200);
    expect([...(await upload)]).toEqual([5, 4, 3, 2, 1]);
    // One upload per expectation.
    expect((await raw(tokenPath('upload/up-ok'), { method: 'POST', body: new Uint8Array(5) })).status).toBe(403);
  });

  it('accepts an empty upload when 0 bytes are expected', async () => {
    const upload = server.expectUpload('up-empty', 0);
    expect((await raw(tokenPath('upload/up-empty'), { method: 'POST', body: new Uint8Array(0) })).status).toBe(200);
    expect((await upload).length).toBe(0);
  });

  it('413 for a too-long upload, 400 for a too-short one; the expectation rejects', async () => {
    const long = server.expectUpload('up-long', 4);
    const longRes = await raw(tokenPath('upload/up-long'), { method: 'POST', body: new Uint8Array(5) });
    expect([413, -1]).toContain(longRes.status);
    await expect(long).rejects.toThrow(/longer than the expected 4/);

    const short = server.expectUpload('up-short', 4);
    expect((await raw(tokenPath('upload/up-short'), { method: 'POST', body: new Uint8Array(3) })).status).toBe(400);
    await expect(short).rejects.toThrow(/shorter than the expected 4/);
  });

  it('413 for a chunked upload that grows past the expected length', async () => {
    const upload = server.expectUpload('up-chunked', 3);
    const res = await new Promise<number>((resolve) => {
      const url = new URL(server.uploadUrl('up-chunked'));
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', () => resolve(-1));
      req.write(Buffer.from([1, 2]));
      req.end(Buffer.from([3, 4]));
    });
    expect([413, -1]).toContain(res);
    await expect(upload).rejects.toThrow(/longer/);
  });

  it('403 for uploads nobody expects, 403/405 for wrong methods', async () => {
    expect((await raw(tokenPath('upload/nobody'), { method: 'POST', body: new Uint8Array(1) })).status).toBe(403);
    expect((await raw(tokenPath('upload/nobody'))).status).toBe(403);
    server.expectUpload('up-get', 1).catch(() => {});
    expect((await raw(tokenPath('upload/up-get'))).status).toBe(405);
    server.cancelUpload('up-get');
    server.offerBytes('nopost', new Uint8Array(1));
    expect((await raw(tokenPath('bytes/nopost'), { method: 'POST', body: new Uint8Array(1) })).status).toBe(405);
  });

  it('cancelUpload and close reject pending expectations', async () => {
    const cancelled = server.expectUpload('up-cancel', 1);
    server.cancelUpload('up-cancel');
    await expect(cancelled).rejects.toThrow(/cancelled/);

    const other = await startRunnerServer({ pageBundlePath: join(dir, 'page.js') });
    const pending = other.expectUpload('later', 10);
    await other.close();
    await other.close(); // idempotent
    await expect(pending).rejects.toThrow(/closed/);
    await expect(other.expectUpload('after', 1)).rejects.toThrow(/closed/);
  });
});
