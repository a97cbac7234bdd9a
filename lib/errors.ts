/**
 * Typed errors with a context chain. Every failure inside loom is a LoomError of
 * one kind; only the HTTP envelope turns it into Docker's `{ "Err", "Error" }`.
 */
export type ErrorKind = 'invalid' | 'not-found' | 'conflict' | 'exhausted' | 'unavailable' | 'internal';

export class LoomError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** errno name when the error came from the kernel (EEXIST, ENODEV, ...). */
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'LoomError';
  }

  /** A new error of the same kind whose message is prefixed with `context: `. */
  withContext(context: string): LoomError {
    return new LoomError(this.kind, `${context}: ${this.message}`, this.errno);
  }
}

export const invalid = (msg: string): LoomError => new LoomError('invalid', msg);
export const notFound = (msg: string): LoomError => new LoomError('not-found', msg);
export const conflict = (msg: string): LoomError => new LoomError('conflict', msg);
export const exhausted = (msg: string): LoomError => new LoomError('exhausted', msg);
export const unavailable = (msg: string): LoomError => new LoomError('unavailable', msg);

/** Converts anything thrown into a LoomError, keeping LoomErrors as they are. */
export function asLoomError(err: unknown): LoomError {
  if (err instanceof LoomError) return err;
  if (err instanceof Error) return new LoomError('internal', err.message);
  return new LoomError('internal', String(err));
}
