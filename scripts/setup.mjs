#!/usr/bin/env node
// One idempotent setup step behind `npm run demo`, `npm test` and friends, so both work on a fresh
// clone: installs npm dependencies when missing or stale, installs Chromium and the Vulkan loader when
// they are missing and this machine can (root + apt), and builds every package (Nx caches unchanged ones).
// Plain Node, no dependencies: it runs before `npm ci` has.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function run(cmd, argv, opts = {}) {
  log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) {
    log(`failed: ${cmd} ${argv.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  log(`lorafuse needs Node.js >= 20.19; this is ${process.versions.node}.`);
  process.exit(2);
}

// 1. npm dependencies: (re)install when node_modules is missing or older than the lock file.
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

// 2. Chromium, for the WebGPU kernels (headless, SwiftShader when there is no GPU).
function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
const candidates = [process.env.CHROME_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(Boolean);
// The Vulkan loader, for Dawn in Node (`--device dawn`); Debian's chromium carries its own copy only.
const hasVulkanLoader = () => spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libvulkan.so.1 "'], { stdio: 'ignore' }).status === 0;
if (!args.has('--no-browser')) {
  const missing = [...(candidates.some(executable) ? [] : ['chromium']), ...(process.platform === 'linux' && !hasVulkanLoader() ? ['libvulkan1'] : [])];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (missing.length > 0 && isRoot && hasApt) {
    log(`installing ${missing.join(' and ')} with apt-get (Chromium runs the WebGPU kernels; libvulkan1 lets Dawn run them in Node).`);
    run('apt-get', ['update'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    if (missing.includes('chromium')) {
      log('Chromium not found. Install it (e.g. `sudo apt-get install chromium`) or set CHROME_PATH;');
      log('without it, use `lorafuse merge --device cpu`. The browser tests will fail until it is installed.');
    }
    if (missing.includes('libvulkan1')) {
      log('The Vulkan loader (libvulkan.so.1) is missing: `lorafuse merge --device dawn` and its tests need it');
      log('(e.g. `sudo apt-get install libvulkan1`).');
    }
  }
}

// 3. Build (Nx runs packages in dependency order and skips unchanged ones).
if (!args.has('--no-build')) {
  const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
  run(join(root, 'node_modules', '.bin', 'nx'), ['run-many', '-t', 'build', '--output-style=static'], { env });
}

// Tell the user which Chromium will be used (helps when several are installed).
try {
  const found = candidates.find(executable);
  if (found) log(`Chromium: ${found} (${execFileSync(found, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()})`);
} catch {
  /* version probe is informational only */
}
