#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (or any `npm run demo` / `npm test`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('lorafuse: the CLI is not built yet. Run `npm run build` in the lorafuse repository first.\n');
  process.exit(2);
}
const { runCli } = await import(main);
process.exitCode = await runCli(process.argv.slice(2));
