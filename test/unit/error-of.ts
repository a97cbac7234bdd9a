/** Test helper: runs `fn`, expects it to throw a LoomError, returns it. */
import { LoomError } from '../../lib/errors';

export function errorOf(fn: () => unknown): LoomError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LoomError);
    return err as LoomError;
  }
  throw new Error('expected a LoomError, nothing was thrown');
}
