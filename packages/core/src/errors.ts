/**
 * Typed errors. They live in `@lorafuse/errors` so that every package (the runner too, which builds
 * before core) extends the same classes; core re-exports them so its importers keep one entry point.
 */
export {
  LorafuseError,
  UsageError,
  InputError,
  EnvironmentError,
  VerificationError,
  exitCodeFor,
  type ErrorKind,
  type LorafuseErrorOptions,
} from '@lorafuse/errors';
