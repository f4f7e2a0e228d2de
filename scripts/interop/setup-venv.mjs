#!/usr/bin/env node
/**
 * Creates `<repo>/.venv-interop` with torch, transformers, peft and safetensors for the interop suite.
 *
 * The machine's pip is configured with local wheel indexes (`pip config list`: `global.extra-index-url`,
 * `global.find-links`). They are read here at run time and passed explicitly as `--index-url` /
 * `--extra-index-url` / `--find-links`, so pip never retries an unreachable default index.
 *
 * Idempotent: `.venv-interop/lorafuse-interop.json` records the installed versions; when it is present
 * and the four packages still import, nothing is installed. `--force` reinstalls.
 *
 * Usage: node scripts/interop/setup-venv.mjs [--force] [--quiet]
 * Exports `ensureVenv()` for run.mjs; prints `{"python": ..., "versions": {...}}` when run directly.
 * No npm dependencies.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const VENV_DIR = join(REPO_ROOT, '.venv-interop');
export const VENV_PYTHON = join(VENV_DIR, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
const MARKER = join(VENV_DIR, 'lorafuse-interop.json');
const PACKAGES = ['torch', 'transformers', 'peft', 'safetensors'];

const VERSIONS_PY = `
import json, importlib, sys
out = {"python": sys.version.split()[0]}
for name in ${JSON.stringify(PACKAGES)}:
    out[name] = importlib.import_module(name).__version__
print(json.dumps(out))
`;

/** Runs a command, inheriting stderr; returns {status, stdout}. */
function run(cmd, args, { capture = true, quiet = false } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', capture ? 'pipe' : quiet ? 'ignore' : 'inherit', quiet ? 'pipe' : 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) return { status: 127, stdout: '', stderr: String(r.error) };
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The versions importable from the venv, or null when the venv is missing or broken. */
function importedVersions() {
  if (!existsSync(VENV_PYTHON)) return null;
  const r = run(VENV_PYTHON, ['-c', VERSIONS_PY], { quiet: true });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return null;
  }
}

/** The host Python used to create the venv. */
function hostPython() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python'].filter(Boolean)) {
    const r = run(candidate, ['-c', 'import sys, venv; print(sys.version_info >= (3, 9))'], { quiet: true });
    if (r.status === 0 && r.stdout.trim() === 'True') return candidate;
  }
  throw new Error('setup-venv: no python3 (>= 3.9, with the venv module) found on PATH; set PYTHON=');
}

/**
 * Index options from `pip config list`, e.g. `global.extra-index-url='file:///a file:///b'`.
 * The first index URL becomes `--index-url`, the rest `--extra-index-url`; find-links are passed as is.
 */
export function pipIndexArgs(py) {
  const r = run(py, ['-m', 'pip', 'config', 'list'], { quiet: true });
  if (r.status !== 0) return { args: [], indexes: [], findLinks: [] };
  const values = { 'index-url': [], 'extra-index-url': [], 'find-links': [] };
  for (const line of r.stdout.split('\n')) {
    const m = /^[^=]*?\.(index-url|extra-index-url|find-links)='?(.*?)'?$/.exec(line.trim());
    if (!m) continue;
    for (const v of m[2].split(/\s+/).filter(Boolean)) {
      if (!values[m[1]].includes(v)) values[m[1]].push(v);
    }
  }
  const indexes = [...values['index-url'], ...values['extra-index-url'].filter((v) => !values['index-url'].includes(v))];
  const args = [];
  if (indexes.length > 0) {
    args.push('--index-url', indexes[0]);
    for (const extra of indexes.slice(1)) args.push('--extra-index-url', extra);
  }
  for (const fl of values['find-links']) args.push('--find-links', fl);
  return { args, indexes, findLinks: values['find-links'] };
}

/**
 * Makes sure the venv exists and imports torch/transformers/peft/safetensors.
 * @returns {{python: string, versions: Record<string,string>, installed: boolean, seconds: number}}
 */
export function ensureVenv({ force = false, quiet = false } = {}) {
  const t0 = Date.now();
  const log = (msg) => process.stderr.write(`setup-venv: ${msg}\n`);
  if (!force && existsSync(MARKER)) {
    const versions = importedVersions();
    if (versions) {
      return { python: VENV_PYTHON, versions, installed: false, seconds: (Date.now() - t0) / 1000 };
    }
    log('marker present but the packages do not import; rebuilding');
  }
  const host = hostPython();
  if (force || !existsSync(VENV_PYTHON) || run(VENV_PYTHON, ['-c', 'import sys'], { quiet: true }).status !== 0) {
    if (existsSync(VENV_DIR)) rmSync(VENV_DIR, { recursive: true, force: true });
    log(`creating ${VENV_DIR} with ${host}`);
    const r = run(host, ['-m', 'venv', VENV_DIR], { capture: false, quiet });
    if (r.status !== 0) throw new Error(`setup-venv: python -m venv failed (${r.status}) ${r.stderr ?? ''}`);
  }
  const { args: indexArgs } = pipIndexArgs(VENV_PYTHON);
  const pipArgs = ['-m', 'pip', 'install', '--disable-pip-version-check', ...(quiet ? ['-q'] : []), ...indexArgs, ...PACKAGES];
  log(`pip ${pipArgs.slice(2).join(' ')}`);
  const r = run(VENV_PYTHON, pipArgs, { capture: false, quiet });
  if (r.status !== 0) throw new Error(`setup-venv: pip install failed (exit ${r.status})\n${r.stderr ?? ''}`);
  const versions = importedVersions();
  if (!versions) throw new Error('setup-venv: packages installed but do not import');
  writeFileSync(MARKER, JSON.stringify({ versions, pipArgs: pipArgs.slice(2), created: new Date().toISOString() }, null, 2) + '\n');
  return { python: VENV_PYTHON, versions, installed: true, seconds: (Date.now() - t0) / 1000 };
}

/** Versions recorded in the marker, without running Python (null when absent). */
export function recordedVersions() {
  try {
    return JSON.parse(readFileSync(MARKER, 'utf8')).versions;
  } catch {
    return null;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  try {
    const res = ensureVenv({ force: argv.includes('--force'), quiet: argv.includes('--quiet') });
    process.stderr.write(`setup-venv: ${res.installed ? 'installed' : 'already present'} in ${res.seconds.toFixed(1)} s\n`);
    process.stdout.write(JSON.stringify({ python: res.python, versions: res.versions }) + '\n');
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
}
