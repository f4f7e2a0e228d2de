#!/usr/bin/env node
// Compiles core's WebAssembly sources (src/compute/simd/*.wat) into the TypeScript modules that
// carry their bytes (*-wasm.ts), so that neither the build nor a user needs a WebAssembly toolchain.
// Run it after editing a .wat file; `--check` (the unit tests do the same) fails when a committed
// module is not what its source compiles to.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileWat, renderWasmModule } from './wasm-module.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'compute', 'simd');
const check = process.argv.includes('--check');
let stale = 0;
for (const name of readdirSync(dir).filter((n) => n.endsWith('.wat'))) {
  const bytes = await compileWat(name, readFileSync(join(dir, name), 'utf8'));
  const target = join(dir, name.replace(/\.wat$/, '-wasm.ts'));
  const text = renderWasmModule(name, bytes);
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // not written yet
  }
  if (current === text) continue;
  if (check) {
    process.stderr.write(`compile-wasm: ${target} is not what ${name} compiles to; run node packages/core/scripts/compile-wasm.mjs\n`);
    stale++;
  } else {
    writeFileSync(target, text);
    process.stdout.write(`compile-wasm: wrote ${target} (${bytes.length} bytes of WebAssembly)\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
