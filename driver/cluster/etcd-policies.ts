/**
 * Fault handling handed to the etcd3 client, replacing its defaults (three retries per call,
 * a 5 s circuit breaker per member, watch reconnects backing off up to 30 s):
 *
 * - failover: a call that failed with a transport error is tried on the next member, at
 *   most once per member, and never past the call's deadline (set per call, absolute);
 * - host breaker: after 2 consecutive transport failures a member is skipped for 2 s (a
 *   hung member would otherwise cost every call that picks it its whole deadline);
 * - watch backoff: the client's own watch-stream reconnects, capped at 2 s so watches
 *   resume within seconds of etcd's return.
 *
 * They are plain objects with the shape etcd3 calls (`execute`, `duration`/`next`); the
 * retry loop that spans outages is loom's own (session.ts), not the client's.
 */
import { IOptions, isRecoverableError } from 'etcd3';
import { Backoff } from '../../lib/cluster/backoff';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type GlobalPolicy = NonNullable<FaultHandling['global']>;
type WatchBackoff = NonNullable<FaultHandling['watchBackoff']>;

/** What a policy's execute() receives (etcd3 ignores it; cockatiel's context shape). */
type Ctx = { signal: AbortSignal };

/** Thrown instead of calling a member whose breaker is open; etcd3 then tries the next member. */
export class MemberSkipped extends Error {
  readonly isBrokenCircuitError = true;
  constructor(host: string) {
    super(`etcd member ${host} skipped after repeated failures`);
  }
}

const recoverable = (err: unknown): boolean => err instanceof Error && isRecoverableError(err);

export function failover(attempts: number): GlobalPolicy {
  const policy = {
    async execute<T>(fn: (ctx: Ctx) => PromiseLike<T> | T): Promise<T> {
      const signal = new AbortController().signal;
      for (let i = 0; ; i++) {
        try {
          return await fn({ signal });
        } catch (err) {
          if (i + 1 >= attempts || !recoverable(err)) throw err;
        }
      }
    },
  };
  return policy as unknown as GlobalPolicy;
}

export function hostBreaker(host: string, opts = { threshold: 2, openMs: 2_000 }, now: () => number = Date.now): HostPolicy {
  let failures = 0;
  let openUntil = 0;
  const policy = {
    async execute<T>(fn: (ctx: Ctx) => PromiseLike<T> | T): Promise<T> {
      if (now() < openUntil) throw new MemberSkipped(host);
      try {
        const v = await fn({ signal: new AbortController().signal });
        failures = 0;
        return v;
      } catch (err) {
        if (recoverable(err) && ++failures >= opts.threshold) {
          openUntil = now() + opts.openMs;
          failures = opts.threshold - 1; // half-open: one more failure re-opens it
        }
        throw err;
      }
    },
  };
  return policy as unknown as HostPolicy;
}

/** etcd3's watch manager takes `next()` for a fresh sequence, then `duration` and `next()` of each step. */
export function watchBackoff(opts = { initialMs: 250, maxMs: 2_000 }): WatchBackoff {
  const step = (b: Backoff, duration: number): unknown => ({ duration, next: () => step(b, b.next()) });
  const root = {
    duration: 0,
    next: () => {
      const b = new Backoff(opts);
      return step(b, b.next());
    },
  };
  return root as unknown as WatchBackoff;
}
