#!/usr/bin/env node
/**
 * The interop suite: real torch/transformers/peft make the inputs and judge lorafuse's output.
 *
 *   1. setup-venv.mjs: `.venv-interop` with torch, transformers, peft, safetensors (cached).
 *   2. peft_cases.py: cases into `.interop-work/cases/<case>/{base,adapter,expected,case.json}` (cached
 *      per case by a stamp of the generator script and library versions).
 *   3. for each case and each device:
 *        node packages/cli/bin/lorafuse.js merge <case>/base <case>/adapter --out <out> --device <device> --json
 *      with <out> = `.interop-work/out/<case>--<device>` (removed first; the CLI creates it).
 *      Passes when the CLI exits 0 and prints one JSON document on stdout (saved beside <out> as
 *      `<out>.cli.json`; stderr goes to `<out>.cli.log`). No field of that document is relied on.
 *   4. judge.py on every (case, out) pair; one JSON verdict per pair.
 *   5. a table, `.interop-work/results.json`, and a last line `N passed, N failed`. Exit 1 on any failure.
 *
 * Options:
 *   --judge-expected     judge PEFT's own expected/ instead of running the CLI (self-check of the Python
 *                        side), then check that judge_selftest.py's broken variants of expected/ all FAIL.
 *   --cases a,b          only these cases (default: all; `python peft_cases.py --list`).
 *   --devices cpu,webgpu devices for the CLI (default: cpu,webgpu).
 *   --cli PATH           the CLI entry (default packages/cli/bin/lorafuse.js; env LORAFUSE_CLI).
 *   --cli-timeout S      seconds per CLI run (default 600).
 *   --regen              regenerate every case.
 *   --keep               keep the CLI outputs of passing runs (failing ones are always kept).
 *   --verbose            print each verdict's JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureVenv, REPO_ROOT } from './setup-venv.mjs';

const WORK = join(REPO_ROOT, '.interop-work');
const CASES_DIR = join(WORK, 'cases');
const OUT_DIR = join(WORK, 'out');
const HERE = join(REPO_ROOT, 'scripts', 'interop');

function parseArgs(argv) {
  const opts = {
    judgeExpected: false,
    cases: null,
    devices: ['cpu', 'webgpu'],
    cli: process.env.LORAFUSE_CLI || join(REPO_ROOT, 'packages', 'cli', 'bin', 'lorafuse.js'),
    cliTimeout: 600,
    regen: false,
    keep: false,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--judge-expected') opts.judgeExpected = true;
    else if (a === '--cases') opts.cases = value().split(',').filter(Boolean);
    else if (a === '--devices') opts.devices = value().split(',').filter(Boolean);
    else if (a === '--cli') opts.cli = value();
    else if (a === '--cli-timeout') opts.cliTimeout = Number(value());
    else if (a === '--regen') opts.regen = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  return opts;
}

function usage(msg) {
  if (msg) process.stderr.write(`run.mjs: ${msg}\n`);
  process.stderr.write('usage: node scripts/interop/run.mjs [--judge-expected] [--cases a,b] [--devices cpu,webgpu] [--cli PATH] [--cli-timeout S] [--regen] [--keep] [--verbose]\n');
  process.exit(2);
}

const log = (msg) => process.stderr.write(`interop: ${msg}\n`);
const seconds = (t0) => (Date.now() - t0) / 1000;

function python(py, args, { timeoutS = 1800 } = {}) {
  return spawnSync(py, args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: timeoutS * 1000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
  });
}

/** Runs the CLI for one case and device; returns {ok, reason, seconds, out}. */
function runCli(opts, caseName, device) {
  const caseDir = join(CASES_DIR, caseName);
  const out = join(OUT_DIR, `${caseName}--${device}`);
  rmSync(out, { recursive: true, force: true });
  rmSync(`${out}.cli.json`, { force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const args = [opts.cli, 'merge', join(caseDir, 'base'), join(caseDir, 'adapter'), '--out', out, '--device', device, '--json'];
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: opts.cliTimeout * 1000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const secs = seconds(t0);
  writeFileSync(`${out}.cli.log`, `$ node ${args.map((x) => relative(REPO_ROOT, x) || x).join(' ')}\n${r.stderr ?? ''}`);
  if (r.error) return { ok: false, reason: `cli: ${r.error.code === 'ETIMEDOUT' ? `timed out after ${opts.cliTimeout} s` : r.error.message}`, seconds: secs, out };
  let doc;
  try {
    doc = JSON.parse(r.stdout);
    writeFileSync(`${out}.cli.json`, JSON.stringify(doc, null, 2) + '\n');
  } catch {
    writeFileSync(`${out}.cli.json`, r.stdout ?? '');
  }
  const tail = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
  if (r.status !== 0) return { ok: false, reason: `cli exit ${r.status ?? r.signal}: ${tail}`, seconds: secs, out };
  if (doc === undefined) return { ok: false, reason: 'cli --json: stdout is not one JSON document', seconds: secs, out };
  if (!existsSync(out)) return { ok: false, reason: `cli exit 0 but ${relative(REPO_ROOT, out)} was not created`, seconds: secs, out };
  // Informational only: which adapter the CLI says it ran on (e.g. SwiftShader).
  const on = doc && typeof doc === 'object' && typeof doc.deviceDescription === 'string' ? ` on ${doc.deviceDescription}` : '';
  return { ok: true, reason: '', seconds: secs, out, on };
}

function judge(py, pairs) {
  if (pairs.length === 0) return { verdicts: new Map(), seconds: 0 };
  const t0 = Date.now();
  const r = python(py, [join(HERE, 'judge.py'), ...pairs.flatMap((p) => [p.caseDir, p.out])]);
  const verdicts = new Map();
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const v = JSON.parse(line);
      verdicts.set(v.merged, v);
    } catch {
      /* not a verdict line */
    }
  }
  if (r.status !== 0 && r.status !== 1) log(`judge.py exited ${r.status ?? r.signal}`);
  return { verdicts, seconds: seconds(t0) };
}

function table(rows) {
  const cols = ['case', 'device', 'cli s', 'judge', 'detail'];
  const cells = rows.map((r) => [r.case, r.device, r.cliSeconds, r.pass ? 'PASS' : 'FAIL', r.detail]);
  const width = cols.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => String(row[i]).length))));
  const fmt = (row) => row.map((x, i) => (i === row.length - 1 ? String(x) : String(x).padEnd(width[i]))).join('  ');
  return [fmt(cols), fmt(width.map((w) => '-'.repeat(w))), ...cells.map(fmt)].join('\n');
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const timings = {};

  let t0 = Date.now();
  const venv = ensureVenv({ quiet: true });
  timings.venv_s = seconds(t0);
  log(`venv ${venv.installed ? 'installed' : 'ready'} in ${timings.venv_s.toFixed(1)} s: ${Object.entries(venv.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  t0 = Date.now();
  const gen = python(venv.python, [join(HERE, 'peft_cases.py'), '--out', CASES_DIR, ...(opts.cases ? ['--cases', opts.cases.join(',')] : []), ...(opts.regen ? ['--force'] : [])]);
  timings.cases_s = seconds(t0);
  if (gen.status !== 0) {
    log(`peft_cases.py failed (exit ${gen.status ?? gen.signal})`);
    process.stdout.write('0 passed, 1 failed\n');
    process.exit(1);
  }
  const caseNames = JSON.parse(gen.stdout.trim().split('\n').pop()).cases;
  log(`${caseNames.length} cases ready in ${timings.cases_s.toFixed(1)} s (${relative(REPO_ROOT, CASES_DIR)})`);

  const rows = [];
  const pairs = [];
  t0 = Date.now();
  if (opts.judgeExpected) {
    for (const c of caseNames) {
      const caseDir = join(CASES_DIR, c);
      const row = { case: c, device: 'peft-expected', cliSeconds: '-', pass: false, detail: '' };
      rows.push(row);
      pairs.push({ caseDir, out: join(caseDir, 'expected'), row });
    }
  } else {
    if (!existsSync(opts.cli)) log(`CLI ${relative(REPO_ROOT, opts.cli)} not found: every case fails (use --judge-expected to check the Python side alone)`);
    for (const c of caseNames) {
      for (const device of opts.devices) {
        const row = { case: c, device, cliSeconds: '-', pass: false, detail: '' };
        rows.push(row);
        if (!existsSync(opts.cli)) {
          row.detail = `CLI ${relative(REPO_ROOT, opts.cli)} not found`;
          continue;
        }
        const res = runCli(opts, c, device);
        row.cliSeconds = res.seconds.toFixed(1);
        log(`${c} / ${device}: cli ${res.ok ? 'ok' : 'FAILED'} in ${row.cliSeconds} s${res.ok ? res.on : `: ${res.reason}`}`);
        if (res.ok) pairs.push({ caseDir: join(CASES_DIR, c), out: res.out, row });
        else row.detail = res.reason;
      }
    }
    timings.cli_s = seconds(t0);
  }

  const { verdicts, seconds: judgeSeconds } = judge(venv.python, pairs);
  timings.judge_s = judgeSeconds;
  for (const p of pairs) {
    const v = verdicts.get(p.out);
    if (!v) {
      p.row.detail = 'judge printed no verdict (crashed?)';
      continue;
    }
    p.row.pass = v.pass;
    p.row.verdict = v;
    const m = v.metrics ?? {};
    p.row.detail = v.pass
      ? `weights ${m.weights_checked ?? '?'} (max err ${(m.weights_max_abs_err ?? NaN).toExponential(1)}), logits max|d| ${(m.model_logits_max_abs ?? NaN).toExponential(1)}`
      : v.failures.slice(0, 3).join(' ; ');
    if (opts.verbose) process.stderr.write(JSON.stringify(v) + '\n');
    // The 124M cases write ~500 MB per run: drop outputs that passed.
    if (v.pass && !opts.keep && !opts.judgeExpected) rmSync(p.out, { recursive: true, force: true });
  }

  if (opts.judgeExpected) {
    t0 = Date.now();
    const st = python(venv.python, [join(HERE, 'judge_selftest.py'), CASES_DIR, join(WORK, 'selftest')]);
    timings.selftest_s = seconds(t0);
    let results = [];
    try {
      results = JSON.parse(st.stdout.trim().split('\n').pop()).results;
    } catch {
      results = [{ mutant: 'judge_selftest.py', caught: false, detail: `exit ${st.status}` }];
    }
    for (const r of results) {
      rows.push({ case: r.mutant, device: 'judge-selftest', cliSeconds: '-', pass: r.caught, detail: `${r.caught ? 'judge decided right' : 'judge decided WRONG'}: ${r.detail}` });
    }
  }

  const passed = rows.filter((r) => r.pass).length;
  const failed = rows.length - passed;
  writeFileSync(join(WORK, 'results.json'), JSON.stringify({ versions: venv.versions, timings, rows }, null, 2) + '\n');
  process.stdout.write(`${table(rows)}\n\n`);
  process.stdout.write(`timings: ${Object.entries(timings).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ')}\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main();
