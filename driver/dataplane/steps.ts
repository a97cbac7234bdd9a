/**
 * Named steps with rollback. Each step may register its inverse; when a later
 * step fails, the inverses run in reverse order (continuing past their own
 * failures, which are logged), and the original error is thrown with the name
 * of the step that failed.
 */
import { asLoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';

export class StepRunner {
  private readonly undo: Array<{ name: string; fn: () => Promise<unknown> }> = [];

  constructor(
    private readonly what: string,
    private readonly log: Logger,
  ) {}

  /** Runs `fn`; if it succeeds and returns an inverse, the inverse is remembered. */
  async step(name: string, fn: () => Promise<(() => Promise<unknown>) | void>): Promise<void> {
    this.log.debug({ step: name }, `${this.what}: step`);
    let inverse: (() => Promise<unknown>) | void;
    try {
      inverse = await fn();
    } catch (err) {
      const e = asLoomError(err).withContext(`${this.what}: ${name}`);
      await this.rollback();
      throw e;
    }
    if (inverse) this.undo.push({ name, fn: inverse });
  }

  /** Undoes every completed step, newest first; returns the errors met on the way. */
  async rollback(): Promise<Error[]> {
    const errors: Error[] = [];
    while (this.undo.length > 0) {
      const u = this.undo.pop() as { name: string; fn: () => Promise<unknown> };
      try {
        await u.fn();
        this.log.debug({ step: u.name }, `${this.what}: undone`);
      } catch (err) {
        errors.push(err as Error);
        this.log.error({ step: u.name, err: String(err) }, `${this.what}: undo failed`);
      }
    }
    return errors;
  }
}

/** Runs every teardown action even when some fail; throws one error naming all failures. */
export async function teardownAll(what: string, actions: Array<[string, () => Promise<unknown>]>): Promise<void> {
  const failures: string[] = [];
  for (const [name, fn] of actions) {
    try {
      await fn();
    } catch (err) {
      failures.push(`${name}: ${asLoomError(err).message}`);
    }
  }
  if (failures.length > 0) throw asLoomError(new Error(`${what}: ${failures.join('; ')}`));
}
