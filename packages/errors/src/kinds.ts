/**
 * One subclass of {@link LorafuseError} per {@link ErrorKind}, so that code throws by what went
 * wrong and never spells the kind itself.
 */
import { LorafuseError, type LorafuseErrorOptions } from './lorafuse-error.js';

/** Wrong command-line arguments. */
export class UsageError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('usage', code, message, options);
  }
}

/** An input file (checkpoint, adapter, config) is malformed or not supported. */
export class InputError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('input', code, message, options);
  }
}

/** Something the machine should provide is missing or broken (browser, GPU adapter, disk). */
export class EnvironmentError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('environment', code, message, options);
  }
}

/** The output does not match what was meant. */
export class VerificationError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('verification', code, message, options);
  }
}
