/**
 * `@lorafuse/errors`: the one error hierarchy of lorafuse. Every package that throws a typed error
 * extends these classes, so the CLI recognises any of them with `instanceof LorafuseError` and maps
 * its `kind` to an exit code with {@link exitCodeFor}. No dependencies, no Node or DOM APIs.
 */
export { LorafuseError, type ErrorKind, type LorafuseErrorOptions } from './lorafuse-error.js';
export { UsageError, InputError, EnvironmentError, VerificationError } from './kinds.js';
export { exitCodeFor } from './exit-code.js';
