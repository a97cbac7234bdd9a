/**
 * Kernel teardown that does not hold Docker's answer. Deleting a veth pair takes the kernel
 * about 20 ms (it waits for RCU grace periods), most of DeleteEndpoint's time, while the
 * endpoint is already gone from the store and from every table: the pair is deleted after
 * the answer (and on a worker thread, netlink-worker.ts, so that the next call is not held
 * either). A teardown that fails or never runs (loomd killed) leaves a link marked as
 * this loomd's that no record names, which the reconciler removes as an orphan.
 *
 * Invariant: DeleteNetwork and shutdown wait for the network's pending teardowns, so
 * "network deleted" and "loomd stopped" still mean nothing of theirs is left half-removed.
 */
import type { Logger } from '../../lib/logger';

export class BackgroundTeardown {
  private readonly pending = new Map<string, Set<Promise<void>>>();

  constructor(private readonly log: Logger) {}

  /** Runs `fn` now without waiting for it; failures are logged, never thrown. */
  start(networkId: string, what: string, fn: () => Promise<void>): void {
    let set = this.pending.get(networkId);
    if (!set) this.pending.set(networkId, (set = new Set()));
    const p: Promise<void> = fn()
      .catch((err: unknown) => this.log.warn({ networkId, err: String(err) }, `${what} failed after the answer (the reconciler removes what is left)`))
      .finally(() => {
        set.delete(p);
        if (set.size === 0 && this.pending.get(networkId) === set) this.pending.delete(networkId);
      });
    set.add(p);
  }

  /** Waits for the pending teardowns of one network, or of all. */
  async settle(networkId?: string): Promise<void> {
    const sets = networkId === undefined ? [...this.pending.values()] : [this.pending.get(networkId) ?? new Set<Promise<void>>()];
    await Promise.all(sets.flatMap((s) => [...s]));
  }

  /** Teardowns in flight (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const s of this.pending.values()) n += s.size;
    return n;
  }
}
