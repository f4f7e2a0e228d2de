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

// The run is over and has said what it had to say, so nothing should keep the process alive. If a
// handle was left open on some error path, a script waiting for us would hang forever: name what is
// open and exit instead. Unref'd, it never delays a normal exit; output still being written to a
// slow reader (a pager) is waited for.
const LINGER_MS = 5_000;
const linger = () => {
  if (process.stdout.writableLength > 0 || process.stderr.writableLength > 0) {
    setTimeout(linger, LINGER_MS).unref();
    return;
  }
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
  process.stderr.write(`lorafuse: still running ${LINGER_MS / 1000} s after the command ended (open: ${open.join(', ') || 'nothing named'}); exiting. This is a bug in lorafuse; please report it with the command you ran.\n`);
  process.exit(process.exitCode);
};
setTimeout(linger, LINGER_MS).unref();
