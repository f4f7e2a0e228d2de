import { LorafuseError } from './lorafuse-error.js';

/** Exit code convention (GNU diff/cmp): 0 ok, 1 verification failed / differs, 2 usage or input error. */
export function exitCodeFor(error: unknown): 1 | 2 {
  if (error instanceof LorafuseError && error.kind === 'verification') return 1;
  return 2;
}
