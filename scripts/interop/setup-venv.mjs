#!/usr/bin/env node
/**
 * Creates the interop suite's Python environments:
 *
 *   `<repo>/.venv-interop`     torch, transformers (newest: 5.x), peft, safetensors: makes the cases and judges.
 *   `<repo>/.venv-interop-v4`  the same torch wheel with transformers==4.57.6 and peft==0.21.0: judges the
 *                              tied cases under transformers v4's load rules (v4 silently re-ties a stored
 *                              lm_head.weight when config.json says tied; v5 does not).
 *
 * The machine's pip is configured with local wheel indexes (`pip config list`: `global.extra-index-url`,
 * `global.find-links`). They are read here at run time and passed explicitly as `--index-url` /
 * `--extra-index-url` / `--find-links`, so pip never retries an unreachable default index.
 *
 * transformers 4.57.6 declares `huggingface-hub>=0.34.0,<1.0`. Where the indexes hold no huggingface-hub
 * below 1.0 (this machine's hold 1.33.0 and 2.0.0 only), the plain install cannot resolve; the v4 venv then
 * installs the dependencies the indexes have, transformers and peft with `--no-deps`, and relaxes the
 * `<1.0` in transformers' own import-time check (`transformers/dependency_versions_table.py`). The marker
 * records that (`patched`), and the judge only loads local directories, which that hub version serves.
 *
 * Idempotent: `<venv>/lorafuse-interop.json` records the installed versions; when it is present and the
 * packages still import, nothing is installed. `--force` reinstalls. Each venv holds a `.gitignore` of `*`.
 *
 * Usage: node scripts/interop/setup-venv.mjs [--v4] [--force] [--quiet]
 * Exports `ensureVenv({flavor})` for run.mjs; prints `{"python": ..., "versions": {...}}` when run directly.
 * No npm dependencies.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pythonIn = (dir) => join(dir, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
export const VENV_DIR = join(REPO_ROOT, '.venv-interop');
export const VENV_PYTHON = pythonIn(VENV_DIR);
const PACKAGES = ['torch', 'transformers', 'peft', 'safetensors'];
export const TRANSFORMERS_V4 = '4.57.6';
export const PEFT_FOR_V4 = '0.21.0';

/** The two environments: what pip is asked for, and the fallback when that cannot resolve. */
export const FLAVORS = {
  v5: { dir: VENV_DIR, install: [PACKAGES] },
  v4: {
    dir: join(REPO_ROOT, '.venv-interop-v4'),
    install: [['torch', `transformers==${TRANSFORMERS_V4}`, `peft==${PEFT_FOR_V4}`, 'safetensors']],
    // transformers 4.57.6's own requirements, less huggingface-hub's `<1.0`; then the two without deps.
    fallback: [
      ['torch', 'safetensors>=0.4.3', 'tokenizers>=0.22.0,<=0.23.0', 'huggingface-hub>=0.34.0', 'numpy>=1.17', 'packaging>=20.0',
        'pyyaml>=5.1', 'regex!=2019.12.17', 'requests', 'tqdm>=4.27', 'filelock', 'accelerate>=0.21.0', 'psutil'],
      ['--no-deps', `transformers==${TRANSFORMERS_V4}`, `peft==${PEFT_FOR_V4}`],
    ],
    expect: { transformers: TRANSFORMERS_V4, peft: PEFT_FOR_V4 },
  },
};

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
function importedVersions(py) {
  if (!existsSync(py)) return null;
  const r = run(py, ['-c', VERSIONS_PY], { quiet: true });
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
 * Relaxes transformers' import-time `huggingface-hub ... <1.0` check (see the header). Returns what was
 * changed, or null when nothing needed to change.
 */
function relaxHubPin(py) {
  const loc = run(py, ['-c', 'import importlib.util as u; print(u.find_spec("transformers").submodule_search_locations[0])'], { quiet: true });
  if (loc.status !== 0) return null;
  const table = join(loc.stdout.trim(), 'dependency_versions_table.py');
  if (!existsSync(table)) return null;
  const text = readFileSync(table, 'utf8');
  const re = /("huggingface-hub": "huggingface-hub[^"]*?),<1\.0"/;
  const m = re.exec(text);
  if (!m) return null;
  writeFileSync(table, text.replace(re, '$1"'));
  return `${table}: ${m[0]} -> ${m[1]}"`;
}

/**
 * Makes sure the venv of `flavor` ('v5' default, or 'v4') exists and imports torch/transformers/peft/safetensors.
 * @returns {{python: string, versions: Record<string,string>, installed: boolean, seconds: number, patched?: string}}
 */
export function ensureVenv({ flavor = 'v5', force = false, quiet = false } = {}) {
  const spec = FLAVORS[flavor];
  if (!spec) throw new Error(`setup-venv: unknown flavor ${flavor}`);
  const dir = spec.dir;
  const py = pythonIn(dir);
  const marker = join(dir, 'lorafuse-interop.json');
  const t0 = Date.now();
  const log = (msg) => process.stderr.write(`setup-venv(${flavor}): ${msg}\n`);
  const expected = (versions) => Object.entries(spec.expect ?? {}).every(([k, want]) => versions?.[k] === want);
  if (!force && existsSync(marker)) {
    const versions = importedVersions(py);
    if (versions && expected(versions)) {
      const patched = JSON.parse(readFileSync(marker, 'utf8')).patched ?? undefined;
      return { python: py, versions, installed: false, seconds: (Date.now() - t0) / 1000, patched };
    }
    log('marker present but the packages do not import (or are other versions); rebuilding');
  }
  const host = hostPython();
  if (force || !existsSync(py) || run(py, ['-c', 'import sys'], { quiet: true }).status !== 0) {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    log(`creating ${dir} with ${host}`);
    const r = run(host, ['-m', 'venv', dir], { capture: false, quiet });
    if (r.status !== 0) throw new Error(`setup-venv: python -m venv failed (${r.status}) ${r.stderr ?? ''}`);
  }
  // Never committed, whatever the repository's .gitignore says.
  writeFileSync(join(dir, '.gitignore'), '# created by scripts/interop/setup-venv.mjs\n*\n');
  const { args: indexArgs } = pipIndexArgs(py);
  const pip = (pkgs) => {
    const pipArgs = ['-m', 'pip', 'install', '--disable-pip-version-check', ...(quiet ? ['-q'] : []), ...indexArgs, ...pkgs];
    log(`pip ${pipArgs.slice(2).join(' ')}`);
    return { r: run(py, pipArgs, { capture: false, quiet }), pipArgs: pipArgs.slice(2) };
  };
  const steps = [];
  let failed = null;
  for (const pkgs of spec.install) {
    const { r, pipArgs } = pip(pkgs);
    steps.push(pipArgs);
    if (r.status !== 0) {
      failed = `pip install failed (exit ${r.status})\n${(r.stderr ?? '').trim().split('\n').slice(-4).join('\n')}`;
      break;
    }
  }
  let patched;
  if (failed && spec.fallback) {
    log(`${failed.split('\n').slice(-1)[0]}\n  -> fallback: the dependencies the indexes have, then transformers/peft with --no-deps`);
    failed = null;
    for (const pkgs of spec.fallback) {
      const { r, pipArgs } = pip(pkgs);
      steps.push(pipArgs);
      if (r.status !== 0) {
        failed = `pip install failed (exit ${r.status})\n${(r.stderr ?? '').trim().split('\n').slice(-4).join('\n')}`;
        break;
      }
    }
    if (!failed && !importedVersions(py)) {
      patched = relaxHubPin(py) ?? undefined;
      if (patched) log(`relaxed transformers' import-time pin: ${patched}`);
    }
  }
  if (failed) throw new Error(`setup-venv(${flavor}): ${failed}`);
  const versions = importedVersions(py);
  if (!versions) throw new Error(`setup-venv(${flavor}): packages installed but do not import (${run(py, ['-c', VERSIONS_PY], { quiet: true }).stderr.trim().split('\n').pop()})`);
  if (!expected(versions)) throw new Error(`setup-venv(${flavor}): installed ${JSON.stringify(versions)}, want ${JSON.stringify(spec.expect)}`);
  writeFileSync(marker, JSON.stringify({ versions, pipSteps: steps, patched, created: new Date().toISOString() }, null, 2) + '\n');
  return { python: py, versions, installed: true, seconds: (Date.now() - t0) / 1000, patched };
}

/** Versions recorded in the marker, without running Python (null when absent). */
export function recordedVersions(flavor = 'v5') {
  try {
    return JSON.parse(readFileSync(join(FLAVORS[flavor].dir, 'lorafuse-interop.json'), 'utf8')).versions;
  } catch {
    return null;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  try {
    const res = ensureVenv({ flavor: argv.includes('--v4') ? 'v4' : 'v5', force: argv.includes('--force'), quiet: argv.includes('--quiet') });
    process.stderr.write(`setup-venv: ${res.installed ? 'installed' : 'already present'} in ${res.seconds.toFixed(1)} s\n`);
    process.stdout.write(JSON.stringify({ python: res.python, versions: res.versions, ...(res.patched ? { patched: res.patched } : {}) }) + '\n');
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
}
