#!/usr/bin/env node
// `npm run app`: builds the merge app and serves dist/ from 127.0.0.1 (a secure context, so the page
// has WebGPU and SubtleCrypto). `--port N` picks the port (default 8417; 0: any free one). Prints the
// URL; Ctrl-C stops it. Only GETs of the built files are answered: the page uploads nothing.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
let port = 8417;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port' || argv[i]?.startsWith('--port=')) {
    const text = argv[i].includes('=') ? argv[i].slice('--port='.length) : argv[++i];
    port = Number(text);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`lorafuse app: --port must be a port number (0-65535), got ${JSON.stringify(text)}\n`);
      process.exit(2);
    }
  } else if (argv[i] === '--no-build') {
    continue;
  } else {
    process.stderr.write(`lorafuse app: unknown option ${argv[i]} (options: --port N, --no-build)\n`);
    process.exit(2);
  }
}

if (!argv.includes('--no-build')) {
  const built = spawnSync(process.execPath, [join(pkg, 'scripts/build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };
const FILES = new Set(['/index.html', '/app.js', '/app.js.map']);
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  const file = path === '/' ? '/index.html' : path;
  if (req.method !== 'GET' || !FILES.has(file)) {
    res.writeHead(req.method === 'GET' ? 404 : 405).end();
    return;
  }
  readFile(join(pkg, 'dist', file)).then(
    (body) => res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))], 'cache-control': 'no-store' }).end(body),
    () => res.writeHead(404).end(),
  );
});
server.on('error', (e) => {
  process.stderr.write(`lorafuse app: cannot serve on 127.0.0.1:${port}: ${e.message}\n`);
  process.exit(2);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`lorafuse app: http://127.0.0.1:${server.address().port}/\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
