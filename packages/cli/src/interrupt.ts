/**
 * Ctrl-C and SIGTERM during a run: undo what the run started (temporary output files, the browser),
 * say so, and exit 130 / 143 as shells expect. Registered per run; unregistered when it ends.
 */
export function onInterrupt(cleanup: () => Promise<void>, stderr: NodeJS.WritableStream = process.stderr): () => void {
  let running = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (running) return;
    running = true;
    stderr.write(`\nlorafuse: ${signal === 'SIGINT' ? 'interrupted' : 'terminated'}; removing partial output\n`);
    void cleanup()
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
