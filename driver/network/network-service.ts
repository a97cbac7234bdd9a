/**
 * Networks and their endpoints: the state owner and the place where the
 * per-network lock is taken. Each network owns its endpoints (one map, no
 * parallel structures). Every change is a list of named steps with rollback;
 * the store is written last, so a stored record always describes something the
 * kernel holds.
 */
import { KeyedMutex } from '../../lib/keyed-mutex';
import type { BridgeInspection, DataPlane } from '../dataplane/bridge';
import { StepRunner, teardownAll } from '../dataplane/steps';
import { conflict, invalid, notFound } from '../../lib/errors';
import type { Firewall, FirewallNetwork } from '../firewall/model';
import type { Logger } from '../../lib/logger';
import { checkSandboxKey } from '../kernel/netns-file';
import type { NetworkRepository } from '../store/network-repo';
import { macFor, normaliseMac, randomMac } from '../model/mac';
import { PORTMAP_KEY, PublishedPort, parsePortMap } from '../model/port-map';
import { PortReserver } from '../ports/port-reserver';
import { hostVethFor, ifbFor, peerVethFor } from '../model/naming';
import { OPT_EGRESS_RATE, OPT_INGRESS_RATE, parseRates } from '../model/rates';
import { OPT_LOOM_OVERLAY, checkLoomKeys, parseNetworkSettings } from '../model/options';
import type { OverlayControl } from './overlay-control';
import { CreateNetworkInput, buildNetworkRecord, checkEndpointAddress, checkIpamData, gatewayFor, overlapping, sameNetworkConfig } from '../model/records';

export type { CreateNetworkInput } from '../model/records';
import type { BridgeSnapshot, EndpointRecord, IpamData, JoinInfo, NetworkRecord } from '../model/types';

/** loom.* keys accepted as per-endpoint driver options. */
export const LOOM_ENDPOINT_OPTION_KEYS: readonly string[] = [OPT_EGRESS_RATE, OPT_INGRESS_RATE];


export interface CreateEndpointInput {
  networkId: string;
  id: string;
  address: string;
  addressV6: string;
  mac: string;
  /** Per-endpoint driver options (string values only). */
  options: Record<string, string>;
}

interface NetworkState {
  record: NetworkRecord;
  endpoints: Map<string, EndpointRecord>;
}

export class NetworkService {
  private readonly networks = new Map<string, NetworkState>();
  /**
   * Networks being created or removed: their bridge names and subnets stay taken until the
   * kernel work is done. `claim` checks and reserves in one synchronous step (no await), so
   * the uniqueness checks are atomic across networks whatever their locks.
   */
  private readonly claims = new Map<string, NetworkRecord>();
  private readonly locks = new KeyedMutex();
  /** Networks whose data plane was verified since loomd started (see ensureRestored). */
  private readonly restored = new Set<string>();

  constructor(
    private readonly repo: NetworkRepository,
    private readonly dataplane: DataPlane,
    private readonly firewall: Firewall,
    private readonly log: Logger,
    private readonly ports: PortReserver = new PortReserver(log),
  ) {}

  private overlay: OverlayControl | undefined;

  /** Cluster mode: overlay networks become possible (set once at start-up). */
  setOverlayControl(control: OverlayControl): void {
    this.overlay = control;
  }

  /** The local network that is this host's instance of overlay `key`. */
  byOverlay(key: string): NetworkRecord | undefined {
    for (const { record } of this.networks.values()) if (record.overlay?.key === key) return record;
    return undefined;
  }

  /** Re-takes the host ports of published bindings after a start. */
  async restorePorts(): Promise<void> {
    for (const { endpoints } of this.networks.values()) {
      for (const ep of endpoints.values()) if (ep.ports?.length) await this.ports.restore(ep.ports);
    }
  }

  async load(): Promise<void> {
    const { networks, endpoints } = await this.repo.loadAll();
    for (const record of networks) this.networks.set(record.id, { record, endpoints: new Map() });
    for (const ep of endpoints) {
      const state = this.networks.get(ep.networkId);
      if (state) state.endpoints.set(ep.id, ep);
      else this.log.warn({ networkId: ep.networkId, endpointId: ep.id }, 'endpoint of an unknown network in the store');
    }
  }

  /** Runs `fn` holding the network's lock (also used by the reconciler). */
  withNetworkLock<T>(networkId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(networkId, fn);
  }

  list(): Array<{ record: NetworkRecord; endpoints: EndpointRecord[] }> {
    return [...this.networks.values()].map((s) => ({ record: s.record, endpoints: [...s.endpoints.values()] }));
  }

  get(networkId: string): NetworkRecord | undefined {
    return this.networks.get(networkId)?.record;
  }

  firewallView(): FirewallNetwork[] {
    return [...this.networks.values()].map(({ record: n }) => ({
      id: n.id,
      bridge: n.bridge,
      subnets4: n.ipv4.map((d) => d.pool),
      subnets6: n.enableIpv6 ? n.ipv6.map((d) => d.pool) : [],
      internal: n.internal,
      icc: n.icc,
      masquerade: n.masquerade,
      published: [...(this.networks.get(n.id)?.endpoints.values() ?? [])].flatMap((e) => e.ports ?? []),
    }));
  }

  async syncFirewall(): Promise<void> {
    await this.firewall.sync(this.firewallView());
  }

  /**
   * Swarm manager, global-scope driver: the options returned here are what every worker
   * receives in CreateNetwork. An overlay is registered for the whole swarm right away, so
   * workers' pools join it instead of racing for the subnet.
   */
  async allocateNetwork(input: { id: string; options: Record<string, string>; ipv4: IpamData[]; ipv6: IpamData[] }): Promise<Record<string, string>> {
    const settings = parseNetworkSettings(input.options);
    if (settings.mode !== 'overlay') return input.options;
    if (!this.overlay) throw invalid('overlay networks need a loom cluster: start loomd with --etcd (see docs/overlay.md)');
    const ipv4 = input.ipv4.map((d) => checkIpamData(d, 4));
    const ipv6 = input.ipv6.map((d) => checkIpamData(d, 6));
    const key = await this.overlay.allocateSwarm(input.id, settings, ipv4, ipv6, input.options);
    return { ...input.options, [OPT_LOOM_OVERLAY]: key };
  }

  async freeNetwork(networkId: string): Promise<void> {
    await this.overlay?.freeSwarm(networkId);
  }

  /** Re-creates a stored network's bridge and addresses if the kernel lost them (caller holds the lock). */
  async restoreNetwork(record: NetworkRecord, steps: StepRunner): Promise<void> {
    await this.dataplane.ensureNetwork(record, steps);
    this.restored.add(record.id);
  }

  /**
   * After a start, the background restore may not have reached a network yet when
   * Docker already uses it (restart-policy containers): restore it inline (caller holds the lock).
   */
  private async ensureRestored(record: NetworkRecord): Promise<void> {
    if (this.restored.has(record.id)) return;
    await this.restoreNetwork(record, new StepRunner(`restore network ${record.id.slice(0, 12)}`, this.log));
    await this.syncFirewall();
  }

  // ---- networks -------------------------------------------------------------------------

  async createNetwork(input: CreateNetworkInput): Promise<void> {
    const record = buildNetworkRecord(input);
    if (input.enableIpv6 && record.ipv6.length === 0) this.log.warn({ networkId: input.id }, 'IPv6 enabled but Docker sent no IPv6 pool');
    const settings = parseNetworkSettings(input.options);
    if (settings.mode === 'overlay' && !this.overlay) {
      throw invalid('overlay networks need a loom cluster: start loomd with --etcd (see docs/overlay.md)');
    }
    await this.locks.run(record.id, async () => {
      const existing = this.networks.get(record.id);
      if (existing) {
        const comparable = existing.record.overlay && !settings.explicitMtu ? { ...existing.record, mtu: record.mtu, overlay: undefined } : existing.record;
        if (!sameNetworkConfig(comparable as NetworkRecord, record)) {
          throw conflict(`network ${record.id} already exists with a different configuration`);
        }
        // Docker retried or re-sent (swarm workers do): converge, then succeed.
        const steps = new StepRunner(`re-create network ${record.id.slice(0, 12)}`, this.log);
        await this.dataplane.ensureNetwork(existing.record, steps);
        await this.syncFirewall();
        return;
      }
      this.claim(record);
      try {
        await this.buildNetwork(record, settings);
      } finally {
        this.claims.delete(record.id);
      }
    });
  }

  /**
   * Checks that `record`'s bridge name and subnets are free on this host (among networks,
   * and networks being created or removed) and reserves them. Synchronous on purpose.
   */
  private claim(record: NetworkRecord): void {
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

  /** The kernel, firewall and store work of a new network (caller holds its lock and its claim). */
  private async buildNetwork(record: NetworkRecord, settings: ReturnType<typeof parseNetworkSettings>): Promise<void> {
    const steps = new StepRunner(`create network ${record.id.slice(0, 12)}`, this.log);
    if (settings.mode === 'overlay' && this.overlay) {
      const control = this.overlay;
      await steps.step('register the overlay in the cluster', async () => {
        const { attachment, mtu, created } = await control.attach(record, settings);
        record.overlay = attachment;
        if (!settings.explicitMtu) record.mtu = mtu;
        return () => control.abandon(record, created);
      });
    } else if (this.overlay) {
      await this.overlay.checkLocal(record);
    }
    await this.borrowIfForeign(record, steps);
    await this.dataplane.ensureNetwork(record, steps, { creating: true });
    await steps.step('install firewall rules', async () => {
      this.networks.set(record.id, { record, endpoints: new Map() });
      try {
        await this.syncFirewall();
      } catch (err) {
        this.networks.delete(record.id);
        throw err;
      }
      return async () => {
        this.networks.delete(record.id);
        await this.syncFirewall();
      };
    });
    await steps.step('store network', () => this.repo.putNetwork(record));
    this.restored.add(record.id);
    if (record.overlay) await this.overlay?.attached(record);
    else await this.overlay?.localCreated(record).catch((err) => this.log.warn({ networkId: record.id, err: String(err) }, 'could not record the subnet in the cluster'));
    this.log.info({ networkId: record.id, bridge: record.bridge, mtu: record.mtu, internal: record.internal }, 'network created');
  }

  /**
   * A bridge that exists without loom's mark is someone else's: borrowed, recorded as it is
   * before any change (under its own key until the network is stored, so a retry after a
   * crash still knows the original), and given back if the create fails. Another loomd's
   * bridge is refused; this loomd's own (an interrupted create) is taken as its own.
   */
  private async borrowIfForeign(record: NetworkRecord, steps: StepRunner): Promise<void> {
    let seen: BridgeInspection = { kind: 'absent' };
    let pending: BridgeSnapshot | undefined;
    await steps.step(`check bridge ${record.bridge}`, async () => {
      seen = await this.dataplane.inspectBridge(record.bridge);
      if (seen.kind === 'foreign') throw conflict(`bridge ${record.bridge} belongs to another loomd (${seen.mark})`);
      if (seen.kind === 'not-bridge') throw conflict(`interface ${record.bridge} exists and is not a bridge`);
      pending = await this.repo.getPendingBorrow(record.bridge);
      // Left by an attempt that died, for a bridge that is no longer someone else's.
      if (pending && seen.kind !== 'unmarked') await this.repo.deletePendingBorrow(record.bridge);
    });
    const found = seen as BridgeInspection;
    if (found.kind !== 'unmarked') return;
    const before = pending ?? found.snapshot;
    await steps.step(`borrow bridge ${record.bridge}`, async () => {
      await this.repo.putPendingBorrow(record.bridge, before);
      record.adoptedBridge = true;
      record.borrowed = before;
      return async () => {
        await this.dataplane.removeNetwork(record);
        await this.repo.deletePendingBorrow(record.bridge);
      };
    });
    this.log.info({ networkId: record.id, bridge: record.bridge }, 'borrowing an existing bridge: it will be given back as it was when the network is removed');
  }

  async deleteNetwork(networkId: string): Promise<void> {
    await this.locks.run(networkId, async () => {
      const state = this.networks.get(networkId);
      if (!state) {
        this.log.info({ networkId }, 'DeleteNetwork of an unknown network: nothing to do');
        return;
      }
      const leftovers = [...state.endpoints.values()];
      if (leftovers.length > 0) {
        this.log.warn({ networkId, endpoints: leftovers.map((e) => e.id) }, 'network deleted with endpoints Docker forgot; removing them');
      }
      this.networks.delete(networkId);
      this.restored.delete(networkId);
      // Its bridge name and subnets stay taken until the bridge is gone or given back.
      this.claims.set(networkId, state.record);
      for (const ep of leftovers) if (ep.ports) this.ports.release(ep.ports);
      await teardownAll(`delete network ${networkId.slice(0, 12)}`, [
        ...leftovers.map((ep): [string, () => Promise<unknown>] => [`remove endpoint ${ep.id.slice(0, 12)}`, () => this.dataplane.removeEndpoint(state.record, ep)]),
        ['remove bridge', () => this.dataplane.removeNetwork(state.record)],
        ['remove firewall rules', () => this.syncFirewall()],
        ['delete from store', () => this.repo.deleteNetwork(networkId, leftovers.map((e) => e.id))],
        ...(state.record.overlay && this.overlay
          ? [
              ...leftovers.map((ep): [string, () => Promise<unknown>] => [`unpublish endpoint ${ep.id.slice(0, 12)}`, async () => this.overlay?.endpointDown(state.record, ep)]),
              ['leave the overlay', () => (this.overlay as OverlayControl).detached(state.record)] as [string, () => Promise<unknown>],
            ]
          : []),
      ]).finally(() => this.claims.delete(networkId));
      this.log.info({ networkId, bridge: state.record.bridge }, 'network deleted');
    });
  }

  // ---- endpoints ------------------------------------------------------------------------

  async createEndpoint(input: CreateEndpointInput): Promise<{ mac?: string }> {
    return this.locks.run(input.networkId, async () => {
      const state = this.networks.get(input.networkId);
      if (!state) throw notFound(`network ${input.networkId} not found`);
      checkLoomKeys(input.options, LOOM_ENDPOINT_OPTION_KEYS, 'endpoint');
      const rates = { ...state.record.rates, ...parseRates(input.options) };
      const net = state.record;
      await this.ensureRestored(net);
      const address = input.address ? checkEndpointAddress(input.address, net.ipv4, 4) : undefined;
      const addressV6 = input.addressV6 ? checkEndpointAddress(input.addressV6, net.ipv6, 6) : undefined;
      let dockerMac: string | undefined;
      if (input.mac) {
        dockerMac = normaliseMac(input.mac);
        if (!dockerMac) throw invalid(`invalid MAC address ${JSON.stringify(input.mac)}`);
      }
      const existing = state.endpoints.get(input.id);
      if (existing) {
        if (existing.address !== address || existing.addressV6 !== addressV6 || (dockerMac && existing.mac !== dockerMac)) {
          throw conflict(`endpoint ${input.id} already exists with different addresses`);
        }
        await this.dataplane.ensureEndpoint(net, existing, new StepRunner(`re-create endpoint ${input.id.slice(0, 12)}`, this.log));
        return existing.macFromDocker ? {} : { mac: existing.mac };
      }
      const names = { hostIf: hostVethFor(input.id), peerIf: peerVethFor(input.id) };
      // A retry after loomd died mid-call finds the pair already made: keep its MAC (unless another endpoint owns it).
      const owned = this.ownsLink(names.hostIf);
      const derived = macFor(address, addressV6);
      const taken = (m: string): boolean => [...state.endpoints.values()].some((e) => e.mac === m);
      const mac = dockerMac ?? (owned ? undefined : await this.dataplane.existingPeerMac(names)) ?? (derived && !taken(derived) ? derived : randomMac());
      const ep: EndpointRecord = {
        networkId: net.id,
        id: input.id,
        ...names,
        mac,
        macFromDocker: dockerMac !== undefined,
        ...(address ? { address } : {}),
        ...(addressV6 ? { addressV6 } : {}),
        options: input.options,
        ...(Object.keys(rates).length ? { rates } : {}),
        ...(rates.egressBps ? { ifb: ifbFor(input.id) } : {}),
        createdAt: new Date().toISOString(),
      };
      // Interface names come from the first 12 characters of the id: two ids may collide, in any network.
      for (const { endpoints } of this.networks.values()) {
        for (const other of endpoints.values()) {
          if (other.hostIf === ep.hostIf) throw conflict(`endpoint ${input.id} collides with endpoint ${other.id} on interface name ${ep.hostIf}`);
          if (other.networkId === net.id && ((address && other.address === address) || (addressV6 && other.addressV6 === addressV6))) {
            throw conflict(`address ${address && other.address === address ? address : addressV6} is already used by endpoint ${other.id.slice(0, 12)}`);
          }
        }
      }
      for (const d of [...net.ipv4, ...net.ipv6]) {
        if (d.gateway && [address, addressV6].some((a) => a !== undefined && a.split('/')[0] === d.gateway?.split('/')[0])) {
          throw conflict(`endpoint address ${address ?? addressV6} is the network's gateway`);
        }
      }
      const steps = new StepRunner(`create endpoint ${input.id.slice(0, 12)}`, this.log);
      await this.dataplane.ensureEndpoint(net, ep, steps, { creating: true });
      await steps.step('store endpoint', () => this.repo.putEndpoint(ep));
      state.endpoints.set(ep.id, ep);
      if (net.overlay) this.overlay?.endpointUp(net, ep);
      // Never echo the address; return the MAC only when Docker gave none.
      return ep.macFromDocker ? {} : { mac: ep.mac };
    });
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    await this.locks.run(networkId, async () => {
      const state = this.networks.get(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep) {
        this.log.info({ networkId, endpointId }, 'DeleteEndpoint of an unknown endpoint: nothing to do');
        return;
      }
      state.endpoints.delete(endpointId);
      if (state.record.overlay) this.overlay?.endpointDown(state.record, ep);
      const hadPorts = Boolean(ep.ports?.length);
      if (ep.ports) this.ports.release(ep.ports);
      await teardownAll(`delete endpoint ${endpointId.slice(0, 12)}`, [
        ['remove veth pair', () => this.dataplane.removeEndpoint(state.record, ep)],
        ['remove published ports', async () => (hadPorts ? this.syncFirewall() : undefined)],
        ['delete from store', () => this.repo.deleteEndpoint(networkId, endpointId)],
      ]);
    });
  }

  async join(networkId: string, endpointId: string, sandboxKey: string): Promise<JoinInfo> {
    return this.locks.run(networkId, async () => {
      const { state, ep } = this.requireEndpoint(networkId, endpointId);
      checkSandboxKey(sandboxKey);
      const net = state.record;
      await this.dataplane.ensureEndpoint(net, ep, new StepRunner(`join endpoint ${endpointId.slice(0, 12)}`, this.log));
      if (ep.sandboxKey !== sandboxKey) {
        const updated = { ...ep, sandboxKey };
        await this.repo.putEndpoint(updated);
        state.endpoints.set(ep.id, updated);
      }
      const info: JoinInfo = { srcName: ep.peerIf };
      if (!net.internal) {
        const gw4 = gatewayFor(ep.address, net.ipv4);
        if (gw4) info.gateway = gw4;
        const gw6 = net.enableIpv6 ? gatewayFor(ep.addressV6, net.ipv6) : undefined;
        if (gw6) info.gatewayV6 = gw6;
      }
      return info;
    });
  }

  /** The endpoint and its network, or a not-found error naming what is missing. */
  private requireEndpoint(networkId: string, endpointId: string): { state: NetworkState; ep: EndpointRecord } {
    const state = this.networks.get(networkId);
    if (!state) throw notFound(`network ${networkId} not found`);
    const ep = state.endpoints.get(endpointId);
    if (!ep) throw notFound(`endpoint ${endpointId} not found in network ${networkId}`);
    return { state, ep };
  }

  async leave(networkId: string, endpointId: string): Promise<void> {
    await this.locks.run(networkId, async () => {
      const ep = this.networks.get(networkId)?.endpoints.get(endpointId);
      if (!ep) {
        this.log.info({ networkId, endpointId }, 'Leave of an unknown endpoint: nothing to do');
        return;
      }
      const { sandboxKey: _gone, ...rest } = ep;
      await this.repo.putEndpoint(rest);
      this.networks.get(networkId)?.endpoints.set(endpointId, rest);
    });
  }

  // ---- external connectivity (published ports) ---------------------------------------------

  /**
   * Publishes the container's ports on this endpoint (Docker asks the endpoint that is
   * the container's gateway). Host ports are reserved, DNAT rules installed; a retry
   * replaces the previous bindings.
   */
  async programExternalConnectivity(networkId: string, endpointId: string, options: Record<string, unknown>): Promise<PublishedPort[]> {
    return this.locks.run(networkId, async () => {
      const { state, ep } = this.requireEndpoint(networkId, endpointId);
      const net = state.record;
      const bindings = parsePortMap(options[PORTMAP_KEY]);
      if (net.internal || (bindings.length === 0 && !ep.ports?.length)) return [];
      const previous = ep.ports ?? [];
      const plain = (cidr?: string): string | undefined => (cidr ? cidr.split('/')[0] : undefined);
      const chosen = await this.ports.replace(previous, bindings, { v4: plain(ep.address), v6: plain(ep.addressV6) }, net.hostBinding ?? '0.0.0.0');
      const updated: EndpointRecord = { ...ep, ports: chosen };
      state.endpoints.set(ep.id, updated);
      try {
        await this.syncFirewall();
        await this.repo.putEndpoint(updated);
      } catch (err) {
        state.endpoints.set(ep.id, ep);
        await this.ports.undoReplace(chosen, previous);
        await this.syncFirewall().catch(() => undefined);
        throw err;
      }
      this.log.info({ networkId, endpointId, ports: chosen.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`) }, 'ports published');
      return chosen;
    });
  }

  /** Removes the endpoint's published ports (Docker: the container stops or another endpoint becomes its gateway). */
  async revokeExternalConnectivity(networkId: string, endpointId: string): Promise<void> {
    await this.locks.run(networkId, async () => {
      const state = this.networks.get(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep?.ports?.length) return;
      this.ports.release(ep.ports);
      const { ports: _gone, ...rest } = ep;
      state.endpoints.set(ep.id, rest);
      await this.syncFirewall();
      await this.repo.putEndpoint(rest);
    });
  }

  /**
   * Reconciler: removes an endpoint Docker forgot (its veth pair is gone, or Docker no
   * longer lists it), unless it was (re)created after `observedAt`. IPAM addresses
   * are left to the IPAM orphan rule, which needs Docker's confirmation.
   */
  async removeStaleEndpoint(networkId: string, endpointId: string, observedAt: number): Promise<boolean> {
    const ep = this.networks.get(networkId)?.endpoints.get(endpointId);
    if (!ep || Date.parse(ep.createdAt) > observedAt) return false;
    await this.deleteEndpoint(networkId, endpointId);
    return true;
  }

  /**
   * Reconciler: the veth pair of an endpoint whose container still runs was deleted (by
   * hand): make a new pair and plumb its container end into the container again.
   */
  async replumbEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    return this.locks.run(networkId, async () => {
      const state = this.networks.get(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep?.sandboxKey) return false;
      const net = state.record;
      const gw = !net.internal ? { v4: gatewayFor(ep.address, net.ipv4), v6: net.enableIpv6 ? gatewayFor(ep.addressV6, net.ipv6) : undefined } : {};
      await this.dataplane.replumbEndpoint(net, ep, { gateway4: gw.v4, gateway6: gw.v6 });
      return true;
    });
  }

  /** Reconciler: removes a network Docker no longer knows (docker network rm while loomd was down). */
  async removeStaleNetwork(networkId: string, observedAt: number): Promise<boolean> {
    const n = this.networks.get(networkId)?.record;
    if (!n || Date.parse(n.createdAt) > observedAt) return false;
    await this.deleteNetwork(networkId);
    return true;
  }

  /** True when some network or endpoint record owns this interface name. */
  ownsLink(name: string): boolean {
    for (const { record, endpoints } of this.networks.values()) {
      if (record.bridge === name || record.overlay?.vxlan === name) return true;
      for (const e of endpoints.values()) if (e.hostIf === name || e.peerIf === name || e.ifb === name) return true;
    }
    return false;
  }

  /** True when `name` is the bridge of a network that borrowed it (someone else's bridge: never marked). */
  isBorrowedBridge(name: string): boolean {
    for (const { record } of this.networks.values()) if (record.bridge === name && record.adoptedBridge) return true;
    return false;
  }

  /** Loom's view of one endpoint (admin tools, EndpointOperInfo). */
  endpoint(networkId: string, endpointId: string): EndpointRecord | undefined {
    return this.networks.get(networkId)?.endpoints.get(endpointId);
  }
}
