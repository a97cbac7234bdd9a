/**
 * The one owner of loom's network state on this host: every network with its endpoints
 * (one map, no parallel structures), the networks being created or removed (their bridge
 * names and subnets stay taken), and the per-network lock. The request-facing services,
 * port publication, the reconciler's repairs and the cluster all read and change networks
 * through it; each change of a network happens under that network's lock.
 */
import { KeyedMutex } from '../../lib/keyed-mutex';
import { conflict, notFound } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { FirewallNetwork } from '../firewall/model';
import { gatewayIfOf, overlapping, routesOutside } from '../model/records';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import type { NetworkRepository } from '../store/network-repo';

export interface NetworkState {
  record: NetworkRecord;
  endpoints: Map<string, EndpointRecord>;
}

/** What other parts need to look up networks (the cluster, metrics, the admin API). */
export interface NetworkLookup {
  list(): Array<{ record: NetworkRecord; endpoints: EndpointRecord[] }>;
  get(networkId: string): NetworkRecord | undefined;
  /** The local network that is this host's instance of overlay `key`. */
  byOverlay(key: string): NetworkRecord | undefined;
  withNetworkLock<T>(networkId: string, fn: () => Promise<T>): Promise<T>;
}

export class NetworkTable implements NetworkLookup {
  private readonly networks = new Map<string, NetworkState>();
  /**
   * Networks being created or removed: their bridge names and subnets stay taken until the
   * kernel work is done. `claim` checks and reserves in one synchronous step (no await), so
   * the uniqueness checks are atomic across networks whatever their locks.
   */
  private readonly claims = new Map<string, NetworkRecord>();
  private readonly locks = new KeyedMutex();
  /** Networks whose data plane was verified since loomd started (NetworkService.ensureRestored). */
  readonly restored = new Set<string>();

  constructor(
    readonly repo: NetworkRepository,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    const { networks, endpoints } = await this.repo.loadAll();
    for (const record of networks) this.networks.set(record.id, { record, endpoints: new Map() });
    for (const ep of endpoints) {
      const state = this.networks.get(ep.networkId);
      if (state) state.endpoints.set(ep.id, ep);
      else this.log.warn({ networkId: ep.networkId, endpointId: ep.id }, 'endpoint of an unknown network in the store');
    }
  }

  /** Runs `fn` holding the network's lock. */
  withNetworkLock<T>(networkId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(networkId, fn);
  }

  list(): Array<{ record: NetworkRecord; endpoints: EndpointRecord[] }> {
    return [...this.networks.values()].map((s) => ({ record: s.record, endpoints: [...s.endpoints.values()] }));
  }

  get(networkId: string): NetworkRecord | undefined {
    return this.networks.get(networkId)?.record;
  }

  state(networkId: string): NetworkState | undefined {
    return this.networks.get(networkId);
  }

  endpoint(networkId: string, endpointId: string): EndpointRecord | undefined {
    return this.networks.get(networkId)?.endpoints.get(endpointId);
  }

  /** The endpoint and its network, or a not-found error naming what is missing. */
  require(networkId: string, endpointId: string): { state: NetworkState; ep: EndpointRecord } {
    const state = this.networks.get(networkId);
    if (!state) throw notFound(`network ${networkId} not found`);
    const ep = state.endpoints.get(endpointId);
    if (!ep) throw notFound(`endpoint ${endpointId} not found in network ${networkId}`);
    return { state, ep };
  }

  byOverlay(key: string): NetworkRecord | undefined {
    for (const { record } of this.networks.values()) if (record.overlay?.key === key) return record;
    return undefined;
  }

  /** Every endpoint of every network. */
  allEndpoints(): EndpointRecord[] {
    return [...this.networks.values()].flatMap((s) => [...s.endpoints.values()]);
  }

  add(record: NetworkRecord): void {
    this.networks.set(record.id, { record, endpoints: new Map() });
  }

  remove(networkId: string): void {
    this.networks.delete(networkId);
    this.restored.delete(networkId);
  }

  /**
   * Checks that `record`'s bridge name and subnets are free on this host (among networks,
   * and networks being created or removed) and reserves them. Synchronous on purpose.
   */
  claim(record: NetworkRecord): void {
    const others = [...[...this.networks.values()].map((s) => s.record), ...this.claims.values()];
    for (const other of others) {
      if (other.id === record.id) continue;
      if (other.bridge === record.bridge) {
        throw conflict(`bridge name ${record.bridge} is already used by network ${other.id.slice(0, 12)}`);
      }
      for (const mine of record.ipv4.concat(record.ipv6)) {
        for (const theirs of other.ipv4.concat(other.ipv6)) {
          if (overlapping(mine.pool, theirs.pool)) {
            throw conflict(`subnet ${mine.pool} overlaps subnet ${theirs.pool} of network ${other.id.slice(0, 12)}`);
          }
        }
      }
    }
    this.claims.set(record.id, record);
  }

  /** Keeps a removed network's names taken until its bridge is gone (DeleteNetwork). */
  hold(record: NetworkRecord): void {
    this.claims.set(record.id, record);
  }

  release(networkId: string): void {
    this.claims.delete(networkId);
  }

  /** True when some network or endpoint record owns this interface name. */
  ownsLink(name: string): boolean {
    for (const { record, endpoints } of this.networks.values()) {
      if (record.bridge === name || record.overlay?.vxlan === name) return true;
      const ns = record.overlay?.ns;
      if (ns && [ns.gatewayIf, ns.gatewayPeer, ns.tunnelIf, ns.tunnelPeer].includes(name)) return true;
      for (const e of endpoints.values()) if (e.hostIf === name || e.peerIf === name || e.ifb === name) return true;
    }
    return false;
  }

  /** True when `name` is the bridge of a network that borrowed it (someone else's bridge: never marked). */
  isBorrowedBridge(name: string): boolean {
    for (const { record } of this.networks.values()) if (record.bridge === name && record.adoptedBridge) return true;
    return false;
  }

  /** What the firewall renders: every network with its published ports. */
  firewallView(): FirewallNetwork[] {
    return [...this.networks.values()].map(({ record: n, endpoints }) => ({
      id: n.id,
      // The interface that holds the gateway in the host's namespace (an overlay's gateway veth).
      bridge: gatewayIfOf(n),
      subnets4: n.ipv4.map((d) => d.pool),
      subnets6: n.enableIpv6 ? n.ipv6.map((d) => d.pool) : [],
      // Nothing leaves the bridge of a network loom does not route outside (--internal, loom.gateway=docker).
      internal: !routesOutside(n),
      icc: n.icc,
      masquerade: n.masquerade,
      published: routesOutside(n) ? [...endpoints.values()].flatMap((e) => e.ports ?? []) : [],
    }));
  }
}
