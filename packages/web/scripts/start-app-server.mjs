/**
 * Starts the built app's server (serve.mjs, without building) on a free port in a child process,
 * for the end-to-end tests and the app benchmark; resolves with the child and the URL it prints.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SERVE = fileURLToPath(new URL('./serve.mjs', import.meta.url));

/** @returns {Promise<{ child: import('node:child_process').ChildProcess; url: string }>} */
export function startAppServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVE, '--port', '0', '--no-build'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve({ child, url: m[0] });
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`the app server exited (${code}): ${out.trim()}`)));
  });
}
