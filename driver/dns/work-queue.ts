/**
 * A small background queue for service discovery's slow work (asking Docker, entering a
 * container's namespace): never run inside a plugin call, at most `concurrency` jobs at once,
 * one job per key at a time (a newer job for a key replaces one still waiting), failed jobs
 * retried with exponential backoff up to `attempts` times. Bounded: the queue holds at most
 * one waiting job per key.
 */
import type { Logger } from '../../lib/logger';

export interface QueueOptions {
  concurrency: number;
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_QUEUE: QueueOptions = { concurrency: 2, attempts: 10, baseMs: 100, maxMs: 5_000 };

/** A job that must not be retried (the container is gone, the input is bad). */
export class GiveUp extends Error {}

interface Job {
  key: string;
  what: string;
  run: () => Promise<void>;
  attempt: number;
}

export class WorkQueue {
  private readonly waiting = new Map<string, Job>();
  private readonly running = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly retrying = new Set<string>();
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly o: QueueOptions = DEFAULT_QUEUE,
  ) {}

  push(key: string, what: string, run: () => Promise<void>): void {
    if (this.stopped) return;
    this.waiting.set(key, { key, what, run, attempt: 0 });
    this.pump();
  }

  /** A job for `key` waits, runs or waits for a retry. */
  has(key: string): boolean {
    return this.waiting.has(key) || this.running.has(key) || this.retrying.has(key);
  }

  get size(): number {
    return this.waiting.size + this.running.size + this.timers.size;
  }

  /** Resolves once nothing waits, runs or is scheduled for a retry (tests, stop). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops waiting jobs and retries; the running ones finish (await idle()). */
  stop(): void {
    this.stopped = true;
    this.waiting.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.retrying.clear();
    this.settle();
  }

  private pump(): void {
    for (const job of [...this.waiting.values()]) {
      if (this.running.size >= this.o.concurrency) return;
      if (this.running.has(job.key)) continue;
      this.waiting.delete(job.key);
      this.running.add(job.key);
      void this.execute(job);
    }
  }

  private async execute(job: Job): Promise<void> {
    try {
      await job.run();
    } catch (err) {
      const last = err instanceof GiveUp || job.attempt + 1 >= this.o.attempts;
      this.log[last ? 'warn' : 'debug']({ key: job.key, attempt: job.attempt + 1, err: String(err) }, `${job.what} failed${last ? ': giving up' : ': will retry'}`);
      if (!last && !this.stopped) this.retry(job);
    } finally {
      this.running.delete(job.key);
      this.pump();
      this.settle();
    }
  }

  private retry(job: Job): void {
    const delay = Math.min(this.o.maxMs, this.o.baseMs * 2 ** job.attempt);
    this.retrying.add(job.key);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.retrying.delete(job.key);
      // A newer job for the key replaces the retry.
      if (!this.waiting.has(job.key) && !this.stopped) this.waiting.set(job.key, { ...job, attempt: job.attempt + 1 });
      this.pump();
      this.settle();
    }, delay);
    t.unref();
    this.timers.add(t);
  }

  private settle(): void {
    if (this.size > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}
