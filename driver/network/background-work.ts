/**
 * Kernel work that does not hold Docker's answer:
 *
 * - Teardown. Deleting a veth pair takes the kernel about 20 ms (it waits for RCU grace
 *   periods), most of DeleteEndpoint's time, while the endpoint is already gone from the store
 *   and from every table: the pair is deleted after the answer (and on a worker thread,
 *   netlink-worker.ts, so that the next call is not held either). A teardown that fails or never
 *   runs (loomd killed) leaves a link marked as this loomd's that no record names, which the
 *   reconciler removes as an orphan.
 * - An endpoint's veth pair. CreateEndpoint answers once the endpoint is recorded (durably) and
 *   checked against what is in the kernel; the pair is made meanwhile, while dockerd does its own
 *   work between CreateEndpoint and Join (a few ms), and Join (the first call that needs the pair:
 *   it names the container end for dockerd to move) waits for it. A creation that fails is undone
 *   and logged; Join then makes the pair itself, or fails with the kernel's reason. A creation
 *   that never finishes (loomd killed) leaves a record without its pair: Join makes it after the
 *   restart, as it does for any recorded endpoint, and the reconciler removes the endpoint if
 *   Docker forgets it (docker run failed).
 *
 * Invariant: DeleteNetwork and shutdown wait for the network's pending work, so "network
 * deleted" and "loomd stopped" still mean nothing of theirs is left half-made or half-removed.
 */
import type { Logger } from '../../lib/logger';

export class BackgroundWork {
  private readonly pending = new Map<string, Set<Promise<unknown>>>();
  /** Endpoint id -> its pair's creation after CreateEndpoint's answer: whether it succeeded. */
  private readonly making = new Map<string, Promise<boolean>>();
  /** Endpoint id -> the end of the last work started for it (never rejects). */
  private readonly last = new Map<string, Promise<void>>();

  constructor(private readonly log: Logger) {}

  /**
   * Runs `fn` (a teardown) without waiting for it; failures are logged, never thrown. With an
   * endpoint id: after the work already started for that endpoint, and the endpoint is no
   * longer being made for a Join (it is being deleted).
   */
  start(networkId: string, what: string, fn: () => Promise<void>, endpointId?: string): void {
    if (endpointId !== undefined) this.making.delete(endpointId);
    const run = endpointId !== undefined ? this.after(endpointId, fn) : fn();
    this.track(networkId, run.catch((err: unknown) => this.log.warn({ networkId, err: String(err) }, `${what} failed after the answer (the reconciler removes what is left)`)));
  }

  /**
   * Makes an endpoint's pair without waiting for it (`fn` undoes its own partial work when it
   * fails), after the work already started for that endpoint (the teardown of an earlier
   * endpoint with the same id); made() waits for it. Failures are logged, never thrown.
   */
  startMaking(networkId: string, endpointId: string, what: string, fn: () => Promise<void>): void {
    const p = this.after(endpointId, fn).then(
      () => true,
      (err: unknown) => {
        this.log.warn({ networkId, endpointId, err: String(err) }, `${what} failed after the answer (Join makes it again or reports why)`);
        return false;
      },
    );
    this.making.set(endpointId, p);
    this.track(networkId, p);
  }

  /**
   * Waits for the endpoint's pending creation, if any: true when it made the pair, false when it
   * failed or there was none. The answer is given once (the entry goes), so later callers see
   * the kernel as it is, not an earlier creation's outcome.
   */
  async made(endpointId: string): Promise<boolean> {
    const p = this.making.get(endpointId);
    if (!p) return false;
    const ok = await p;
    if (this.making.get(endpointId) === p) this.making.delete(endpointId);
    return ok;
  }

  /** Drops what is known of an endpoint's creation (the endpoint is gone with its network). */
  forget(endpointId: string): void {
    this.making.delete(endpointId);
  }

  /** `fn` once the work started earlier for the endpoint has ended (at once when there is none). */
  private after(endpointId: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.last.get(endpointId);
    const run = prev ? prev.then(fn) : fn();
    const ended = run.then(
      () => undefined,
      () => undefined,
    );
    this.last.set(endpointId, ended);
    void ended.then(() => {
      if (this.last.get(endpointId) === ended) this.last.delete(endpointId);
    });
    return run;
  }

  private track(networkId: string, p: Promise<unknown>): void {
    let set = this.pending.get(networkId);
    if (!set) this.pending.set(networkId, (set = new Set()));
    const s = set;
    const done = p.finally(() => {
      s.delete(done);
      if (s.size === 0 && this.pending.get(networkId) === s) this.pending.delete(networkId);
    });
    s.add(done);
  }

  /** Waits for the pending work of one network, or of all. */
  async settle(networkId?: string): Promise<void> {
    const sets = networkId === undefined ? [...this.pending.values()] : [this.pending.get(networkId) ?? new Set<Promise<unknown>>()];
    await Promise.all(sets.flatMap((s) => [...s]));
  }

  /** Work in flight (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const s of this.pending.values()) n += s.size;
    return n;
  }
}
