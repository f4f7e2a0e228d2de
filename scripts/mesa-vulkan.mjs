#!/usr/bin/env node
// Debian's Mesa Vulkan drivers (`mesa-vulkan-drivers`: lavapipe, and Intel/AMD drivers that find no
// hardware on most machines) in a private folder, for the tests of Dawn with such drivers present,
// without installing them: a system install would change what every other process on the machine sees.
//
//   node scripts/mesa-vulkan.mjs prepare [--dir DIR]        downloads and unpacks them (idempotent)
//   node scripts/mesa-vulkan.mjs run [--dir DIR] -- CMD...  runs CMD with them on the loader's path
//
// DIR defaults to .cache/mesa-vulkan. `prepare` fetches the package with `apt-get download` (plus the
// libraries it needs that are not installed), unpacks it with `dpkg -x`, points the driver and layer
// manifests at the unpacked libraries, and writes DIR/env.json: the variables to prepend to, namely
// XDG_DATA_DIRS (the loader searches DIR/root/usr/share/vulkan/icd.d there exactly as it searches
// /usr/share/vulkan/icd.d, implicit layers included) and LD_LIBRARY_PATH (the unpacked libraries).
// The tests read env.json (LORAFUSE_TEST_MESA_VULKAN=DIR); plain Node, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`[mesa-vulkan] ${msg}\n`);

function fail(msg) {
  log(msg);
  process.exit(1);
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Every file under `dir`, recursively. */
function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** The environment of `dir` (from its env.json) on top of `base`. */
export function mesaVulkanEnv(dir, base = process.env) {
  const { prepend } = JSON.parse(readFileSync(join(dir, 'env.json'), 'utf8'));
  const defaults = { XDG_DATA_DIRS: '/usr/local/share:/usr/share' };
  const env = { ...base };
  for (const [name, value] of Object.entries(prepend)) env[name] = [value, base[name] || defaults[name]].filter(Boolean).join(':');
  return env;
}

function prepare(dir) {
  if (existsSync(join(dir, 'env.json'))) {
    log(`already prepared: ${dir}`);
    return;
  }
  if (process.platform !== 'linux' || !run('sh', ['-c', 'command -v apt-get && command -v dpkg-deb']).ok) fail('needs Debian/Ubuntu (apt-get and dpkg-deb).');
  const work = `${dir}.tmp`;
  rmSync(work, { recursive: true, force: true });
  const debs = join(work, 'debs');
  const root = join(work, 'root');
  mkdirSync(debs, { recursive: true });

  // What an install would add: the drivers, and the libraries among their dependencies that this
  // machine lacks (installed ones are used from the system, as an install would). Upgrades of
  // installed packages (`Inst name [old] (new ...)`) are left out: the drivers do not need them.
  let sim = run('apt-get', ['install', '-s', '--no-install-recommends', 'mesa-vulkan-drivers']);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!sim.ok && isRoot) {
    log('$ apt-get update (no package lists yet)');
    run('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    sim = run('apt-get', ['install', '-s', '--no-install-recommends', 'mesa-vulkan-drivers']);
  }
  if (!sim.ok) fail(`apt-get cannot resolve mesa-vulkan-drivers:\n${sim.err}`);
  const wanted = [...sim.out.matchAll(/^Inst (\S+) \(/gm)].map((m) => m[1]).filter((p) => p === 'mesa-vulkan-drivers' || p.startsWith('lib'));
  if (!wanted.includes('mesa-vulkan-drivers')) wanted.push('mesa-vulkan-drivers');
  log(`$ apt-get download ${wanted.join(' ')}`);
  const dl = run('apt-get', ['download', ...wanted], { cwd: debs });
  if (!dl.ok) fail(`apt-get download failed:\n${dl.err}`);
  for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
    const x = run('dpkg-deb', ['-x', join(debs, deb), root]);
    if (!x.ok) fail(`dpkg-deb -x ${deb} failed:\n${x.err}`);
  }

  // Manifests name their library by absolute path (drivers) or by file name (layers): both are
  // pointed at the unpacked copy, so that no LD_LIBRARY_PATH is needed to find them.
  const files = walk(root);
  const libDirs = [...new Set(files.filter((f) => /\.so(\.\d+)*$/.test(f)).map(dirname))];
  const manifests = files.filter((f) => /\/usr\/share\/vulkan\/(icd|implicit_layer|explicit_layer)\.d\/[^/]+\.json$/.test(f));
  const icds = [];
  for (const m of manifests) {
    const doc = JSON.parse(readFileSync(m, 'utf8'));
    const entry = doc.ICD ?? doc.layer;
    if (!entry?.library_path) continue;
    const lib = entry.library_path;
    const local = isAbsolute(lib) ? join(root, lib) : libDirs.map((d) => join(d, lib)).find((p) => existsSync(p));
    if (!local || !existsSync(local)) fail(`${m}: its library ${lib} is not in the package`);
    // Written as the path it will have once the folder is moved into place.
    entry.library_path = local.replace(work, dir);
    writeFileSync(m, `${JSON.stringify(doc, null, 2)}\n`);
    if (doc.ICD) icds.push({ manifest: m.replace(work, dir), library: local });
  }
  if (icds.length === 0) fail('the package holds no Vulkan driver manifest');

  // Every driver library must load with what is installed plus what was unpacked.
  const ldPath = libDirs.join(':');
  for (const { library } of icds) {
    const ldd = run('ldd', [library], { env: { ...process.env, LD_LIBRARY_PATH: [ldPath, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') } });
    const missing = ldd.out.split('\n').filter((l) => l.includes('not found'));
    if (missing.length > 0) fail(`${library} lacks libraries:\n${missing.join('\n')}`);
  }

  rmSync(debs, { recursive: true, force: true });
  const env = {
    prepend: { XDG_DATA_DIRS: join(dir, 'root', 'usr', 'share'), LD_LIBRARY_PATH: libDirs.map((d) => d.replace(work, dir)).join(':') },
    packages: wanted,
    icds: icds.map(({ manifest, library }) => ({ manifest, library: library.replace(work, dir) })),
  };
  writeFileSync(join(work, 'env.json'), `${JSON.stringify(env, null, 2)}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(work, dir);
  const size = walk(dir).reduce((s, f) => s + statSync(f).size, 0);
  log(`prepared ${dir} (${wanted.join(', ')}; ${(size / 1e6).toFixed(0)} MB): drivers ${icds.map((i) => i.manifest.split('/').pop()).join(', ')}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const command = argv.shift();
  let dir = join(repo, '.cache', 'mesa-vulkan');
  if (argv[0] === '--dir') {
    argv.shift();
    dir = resolve(argv.shift() ?? fail('--dir needs a folder'));
  }
  if (command === 'prepare') {
    prepare(dir);
  } else if (command === 'run' && argv[0] === '--' && argv.length > 1) {
    if (!existsSync(join(dir, 'env.json'))) fail(`${dir} is not prepared: run \`node scripts/mesa-vulkan.mjs prepare\` first.`);
    const r = spawnSync(argv[1], argv.slice(2), { stdio: 'inherit', env: mesaVulkanEnv(dir) });
    process.exit(r.status ?? 1);
  } else {
    fail('usage: node scripts/mesa-vulkan.mjs prepare [--dir DIR] | run [--dir DIR] -- CMD [ARGS...]');
  }
}
