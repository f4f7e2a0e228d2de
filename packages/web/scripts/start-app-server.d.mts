import type { ChildProcess } from 'node:child_process';
/** Starts the built app's server on a free port; resolves with the child process and its URL. */
export function startAppServer(): Promise<{ child: ChildProcess; url: string }>;
