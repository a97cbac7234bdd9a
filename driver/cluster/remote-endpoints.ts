/**
 * Other hosts' overlay endpoints, as this host programs them (static FDB and neighbour
 * entries on each overlay's VXLAN device), kept from the endpoints watch.
 *
 * When an endpoint's key disappears from etcd, why matters:
 * - its host is registered: the host unpublished it (container gone): removed after
 *   `settleMs` (the host key's own deletion, in the same etcd revision, may still be on
 *   its way);
 * - its host's key is gone too: the host's lease ended (host dead or stopped, partitioned
 *   from etcd, or etcd itself was away and revoked every lease on its return). The kernel
 *   of such a host may well still forward, so the endpoint is kept for `graceMs`; when the
 *   host registers again it publishes its endpoints again (which ends the retirement),
 *   and an endpoint it has not published again `republishMs` after its return is removed.
 *
 * Keeping a departed host's entries cannot misdirect traffic to another container: its
 * address blocks stay claimed by it, so no other host hands out those addresses.
 * Memory: one entry per remote endpoint (retiring ones included).
 */
import type { RemoteEndpoint } from './agent';

export interface RetireOptions {
  graceMs: number;
  settleMs?: number;
  republishMs?: number;
}

interface Retiring {
  ep: RemoteEndpoint;
  since: number;
  /** The host was seen unregistered while this endpoint was retiring. */
  hostLeft: boolean;
  /** When the host was seen registered again. */
  backAt?: number;
}

const idOf = (ep: Pick<RemoteEndpoint, 'overlay' | 'host' | 'endpointId'>): string => `${ep.overlay}|${ep.host}|${ep.endpointId}`;

export class RemoteEndpoints {
  /** overlay key -> "host/endpointId" -> endpoint */
  readonly byOverlay = new Map<string, Map<string, RemoteEndpoint>>();
  private readonly retiring = new Map<string, Retiring>();

  constructor(
    private readonly hostRegistered: (hostId: string) => boolean,
    private readonly onChange: (ep: RemoteEndpoint, present: boolean) => void,
    private readonly opts: RetireOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get(overlay: string, host: string, endpointId: string): RemoteEndpoint | undefined {
    return this.byOverlay.get(overlay)?.get(`${host}/${endpointId}`);
  }

  /** True while the endpoint's key is gone from etcd and it is only kept by the rule above (names are not answered for it). */
  isRetiring(ep: Pick<RemoteEndpoint, 'overlay' | 'host' | 'endpointId'>): boolean {
    return this.retiring.has(idOf(ep));
  }

  /** Endpoints kept although their host's lease is gone (status, metrics). */
  get retained(): number {
    return [...this.retiring.values()].filter((r) => r.hostLeft).length;
  }

  put(ep: RemoteEndpoint): void {
    this.retiring.delete(idOf(ep));
    const map = this.byOverlay.get(ep.overlay) ?? new Map<string, RemoteEndpoint>();
    map.set(`${ep.host}/${ep.endpointId}`, ep);
    this.byOverlay.set(ep.overlay, map);
    this.onChange(ep, true);
  }

  /** The endpoint's key was deleted in etcd. */
  deleted(overlay: string, host: string, endpointId: string): void {
    const ep = this.get(overlay, host, endpointId);
    if (ep) this.retire(ep);
  }

  /** After a (re-)listing: endpoints absent from it retire, the others are (re)applied. */
  resync(fresh: RemoteEndpoint[]): void {
    const ids = new Set(fresh.map(idOf));
    for (const eps of this.byOverlay.values()) for (const ep of eps.values()) if (!ids.has(idOf(ep))) this.retire(ep);
    for (const ep of fresh) this.put(ep);
  }

  private retire(ep: RemoteEndpoint): void {
    const id = idOf(ep);
    if (!this.retiring.has(id)) this.retiring.set(id, { ep, since: this.now(), hostLeft: false });
  }

  /** Applies the removal rule (the agent calls it every second). */
  sweep(): void {
    const now = this.now();
    const { graceMs, settleMs = 1_000, republishMs = 10_000 } = this.opts;
    for (const [id, r] of [...this.retiring]) {
      let gone: boolean;
      if (!this.hostRegistered(r.ep.host)) {
        r.hostLeft = true;
        r.backAt = undefined;
        gone = now - r.since >= graceMs;
      } else if (r.hostLeft) {
        r.backAt ??= now;
        gone = now - r.backAt >= republishMs;
      } else gone = now - r.since >= settleMs;
      if (gone) {
        this.retiring.delete(id);
        this.remove(r.ep);
      }
    }
  }

  private remove(ep: RemoteEndpoint): void {
    const map = this.byOverlay.get(ep.overlay);
    if (!map?.delete(`${ep.host}/${ep.endpointId}`)) return;
    if (map.size === 0) this.byOverlay.delete(ep.overlay);
    this.onChange(ep, false);
  }
}
