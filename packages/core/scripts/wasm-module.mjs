// WAT → WebAssembly bytes (wabt, a dev dependency) and the TypeScript module that carries them.
import wabtInit from 'wabt';

/** Compiles WAT text (with SIMD) to WebAssembly bytes; throws wabt's message, naming `name`, on an error. */
export async function compileWat(name, text) {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat(name, text, { simd: true });
  try {
    parsed.resolveNames();
    parsed.validate();
    return Uint8Array.from(parsed.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    parsed.destroy();
  }
}

/** The generated module: the bytes as a literal, 24 to a line. */
export function renderWasmModule(sourceName, bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 24) lines.push(`  ${Array.from(bytes.subarray(i, i + 24)).join(', ')},`);
  return [
    `// Generated from ${sourceName} by packages/core/scripts/compile-wasm.mjs: edit the .wat file and run that script.`,
    `export const WASM_BYTES: Uint8Array<ArrayBuffer> = new Uint8Array([`,
    ...lines,
    `]);`,
    '',
  ].join('\n');
}
