/**
 * Named steps with rollback. Each step may register its inverse; when a later
 * step fails, the inverses run in reverse order (continuing past their own
 * failures, which are logged), and the original error is thrown with the name
 * of the step that failed.
 *
 * Setup tables (defineStep, runTable): the creation of a network or an endpoint is a
 * list of named steps, each with its condition, its action and its inverse, in the
 * manner of libnetwork's bridge driver ({Condition, Fn}); network-steps.ts and
 * endpoint-steps.ts hold them. A table runs on a StepRunner, so a failing step undoes
 * every step before it, newest first (also those its caller ran on the same runner).
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

/** One named step of a setup table over a context C. */
export interface StepSpec<C, I = undefined> {
  /** Stable id: what tests and docs call the step. */
  id: string;
  /** The items it runs for, one named step each (a network's gateway addresses); default: once. */
  each?: (c: C) => readonly I[];
  /** Whether it applies, asked when the table reaches it: it sees what earlier steps did. If it throws, the step fails. */
  when: (c: C, item: I) => boolean | Promise<boolean>;
  /** Its name in logs and in the error of a failed create. */
  name: (c: C, item: I) => string;
  run: (c: C, item: I) => Promise<unknown>;
  /** Undoes `run` if a later step fails; absent when nothing needs undoing. */
  undo?: (c: C, item: I) => Promise<unknown>;
}

/** A step of a table, whatever its items. */
export interface SetupStep<C> {
  readonly id: string;
  /** Whether it registers an inverse. */
  readonly reversible: boolean;
  apply(c: C, steps: StepRunner): Promise<void>;
}

export function defineStep<C, I = undefined>(spec: StepSpec<C, I>): SetupStep<C> {
  return {
    id: spec.id,
    reversible: spec.undo !== undefined,
    async apply(c: C, steps: StepRunner): Promise<void> {
      const items = spec.each ? spec.each(c) : [undefined as I];
      for (const item of items) {
        let applies: boolean;
        try {
          applies = await spec.when(c, item);
        } catch (err) {
          // A condition that cannot be read (a kernel read failing) fails its step: rolled back like one.
          await steps.step(spec.name(c, item), () => Promise.reject(err));
          return;
        }
        if (!applies) continue;
        await steps.step(spec.name(c, item), async () => {
          await spec.run(c, item);
          const undo = spec.undo;
          return undo ? () => undo(c, item) : undefined;
        });
      }
    },
  };
}

/** Runs a table's steps in order on `steps`. */
export async function runTable<C>(table: ReadonlyArray<SetupStep<C>>, c: C, steps: StepRunner): Promise<void> {
  for (const s of table) await s.apply(c, steps);
}
