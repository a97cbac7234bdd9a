/**
 * Capped exponential backoff with jitter (pure; the random source is injected for tests).
 *
 * Delay n (n = 0, 1, ...) is min(maxMs, initialMs * factor^n), then spread by ±jitter
 * (a fraction), never above maxMs and never below 1 ms. Jitter keeps a cluster of hosts
 * that lost etcd at the same moment from retrying in lockstep when it returns.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Spread as a fraction of the delay, 0..1 (default 0.2). */
  jitter?: number;
}

export class Backoff {
  private n = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs)) throw new RangeError('backoff needs 0 < initialMs <= maxMs');
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.n;
  }

  /** The next delay in ms; each call advances the sequence. */
  next(): number {
    const { initialMs, maxMs, factor = 2, jitter = 0.2 } = this.opts;
    // Exponent bounded so the power never overflows however long an outage lasts.
    const base = Math.min(maxMs, initialMs * factor ** Math.min(this.n, 40));
    this.n++;
    const spread = base * jitter * (2 * this.random() - 1);
    return Math.max(1, Math.min(maxMs, Math.round(base + spread)));
  }

  reset(): void {
    this.n = 0;
  }
}
