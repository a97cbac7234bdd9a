/**
 * Service discovery on loom overlays (docs/overlay.md, "Service discovery"). For each container
 * joined to a loom OVERLAY network on this host, in the background (work-queue.ts, never
 * inside a plugin call):
 * - its names are learned from Docker (learn.ts) and stored/published with the endpoint;
 * - a resolver is attached in its namespace (kernel/dns-sockets.ts + resolver.ts) that answers
 *   the names of its overlays (name-table.ts) and relays everything else to Docker's resolver.
 * Containers on bridge networks only are never touched. A container on several overlays gets
 * the names of all of them. On a graceful stop every steering table is removed (Docker's
 * resolver then answers directly); at start the attachments are made again.
 */
import type Dockerode from 'dockerode';
import type { Logger } from '../../lib/logger';
import type { RemoteEndpoint } from '../cluster/records';
import { hasResolverRule, installResolverRule, openResolverSockets, removeResolverRule, sandboxState } from '../kernel/dns-sockets';
import { NetnsPaths } from '../kernel/netns-file';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import type { EndpointListener } from '../network/endpoint-events';
import type { NetworkLookup } from '../network/network-table';
import { decide } from './answer';
import { JoinedInspect, namesOf, sharedInspect } from './learn';
import { NamedEndpoint, NameTable } from './name-table';
import { ContainerResolver, QueryResult } from './resolver';
import { DEFAULT_QUEUE, GiveUp, QueueOptions, WorkQueue } from './work-queue';

/** What discovery reads of the cluster: the agent's watched copy of etcd (it outlives an outage). */
export interface ClusterView {
  hostId: string;
  remote: Map<string, Map<string, RemoteEndpoint>>;
  hostRegistered(host: string): boolean;
  retiring(ep: RemoteEndpoint): boolean;
}

/** The kernel side, replaceable in tests. */
export interface ResolverKernel {
  open: typeof openResolverSockets;
  install: typeof installResolverRule;
  remove: typeof removeResolverRule;
  check: typeof hasResolverRule;
  state: typeof sandboxState;
}

export interface DiscoveryDeps {
  networks: NetworkLookup;
  cluster: ClusterView;
  docker: () => Promise<Dockerode>;
  /** The inspect shared with network policy (learn.ts sharedInspect); one of its own when absent. */
  inspect?: JoinedInspect;
  setNames(networkId: string, endpointId: string, sandboxKey: string, names: string[]): Promise<boolean>;
  log: Logger;
  onQuery?: (result: QueryResult) => void;
  kernel?: ResolverKernel;
  /** Where this process opens a SandboxKey (managed plugin: --netns-dir); default: Docker's paths. */
  netns?: NetnsPaths;
  queue?: QueueOptions;
}

/** The real kernel side, opening each SandboxKey where this process sees it. */
function resolverKernel(netns: NetnsPaths): ResolverKernel {
  const at = (key: string): string => netns.local(key);
  return {
    open: (key) => openResolverSockets(at(key)),
    install: (key, udpPort, tcpPort) => installResolverRule(at(key), udpPort, tcpPort),
    remove: (key) => removeResolverRule(at(key)),
    check: (key, udpPort, tcpPort) => hasResolverRule(at(key), udpPort, tcpPort),
    state: (key) => sandboxState(at(key)),
  };
}

/** A sandbox whose namespace file has not appeared this long after its join is taken as gone. */
const SANDBOX_APPEAR_MS = 30_000;

interface Attachment {
  /** Overlay keys of the container's loom overlay networks on this host. */
  overlays: Map<string, string>;
  /** When the sandbox was first seen joined (its namespace file appears when the container starts). */
  since: number;
  resolver?: ContainerResolver;
  ports?: { udp: number; tcp: number };
}

export class ServiceDiscovery implements EndpointListener {
  readonly names: NameTable;
  private readonly queue: WorkQueue;
  private readonly sandboxes = new Map<string, Attachment>();
  private readonly kernel: ResolverKernel;
  private readonly inspect: JoinedInspect;

  constructor(private readonly d: DiscoveryDeps) {
    this.names = new NameTable(() => this.namedEndpoints());
    this.queue = new WorkQueue(d.log, d.queue ?? DEFAULT_QUEUE);
    this.inspect = d.inspect ?? sharedInspect(d.docker);
    this.kernel = d.kernel ?? resolverKernel(d.netns ?? new NetnsPaths());
  }

  /** Sandboxes with a resolver attached now (status, tests). */
  get attached(): string[] {
    return [...this.sandboxes].filter(([, a]) => a.resolver).map(([k]) => k);
  }

  /** Resolves once no background work waits or runs (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  // ---- endpoint events (inside plugin calls: note and queue only) ------------------------

  joined(net: NetworkRecord, ep: EndpointRecord, sandboxKey: string): void {
    if (!net.overlay) return;
    const a = this.sandboxes.get(sandboxKey) ?? { overlays: new Map<string, string>(), since: Date.now() };
    a.overlays.set(net.id, net.overlay.key);
    this.sandboxes.set(sandboxKey, a);
    this.names.changed();
    if (!ep.dnsNames?.length) this.queue.push(`names:${ep.id}`, `learn names of ${ep.id.slice(0, 12)}`, () => this.learn(net.id, ep.id, sandboxKey));
    this.queue.push(`attach:${sandboxKey}`, `attach resolver to ${sandboxKey}`, () => this.sync(sandboxKey));
  }

  left(net: NetworkRecord, _ep: EndpointRecord, sandboxKey: string): void {
    if (!net.overlay) return;
    this.sandboxes.get(sandboxKey)?.overlays.delete(net.id);
    this.names.changed();
    this.queue.push(`attach:${sandboxKey}`, `detach resolver from ${sandboxKey}`, () => this.sync(sandboxKey));
  }

  /** The cluster's endpoints changed (a remote name may have come or gone). */
  remoteChanged(): void {
    this.names.changed();
  }

  // ---- start and stop ---------------------------------------------------------------------

  /** Attaches again to every joined overlay endpoint's container (background; a crash left stale rules: replaced). */
  restore(): void {
    for (const { record, endpoints } of this.d.networks.list()) {
      for (const ep of endpoints) if (ep.sandboxKey) this.joined(record, ep, ep.sandboxKey);
    }
  }

  /**
   * The reconciler's pass: joined overlay endpoints whose container runs but has no resolver
   * (an attach gave up) or no names are queued again; a steering table that is missing or
   * points elsewhere is installed again. One nft listing per attached container.
   */
  async repair(): Promise<Record<string, number>> {
    const n = { 'dns-attach': 0, 'dns-names': 0, 'dns-rule': 0 };
    for (const { record, endpoints } of this.d.networks.list()) {
      if (!record.overlay) continue;
      for (const ep of endpoints) {
        const key = ep.sandboxKey;
        if (!key || this.kernel.state(key) !== 'ready' || this.queue.has(`attach:${key}`) || this.queue.has(`names:${ep.id}`)) continue;
        const a = this.sandboxes.get(key);
        if (!a?.resolver || !a.overlays.has(record.id) || !ep.dnsNames?.length) {
          n[a?.resolver && a.overlays.has(record.id) ? 'dns-names' : 'dns-attach']++;
          this.joined(record, ep, key);
        }
      }
    }
    for (const [key, a] of this.sandboxes) {
      if (!a.resolver || !a.ports || this.queue.has(`attach:${key}`) || this.kernel.state(key) !== 'ready') continue;
      const { udp, tcp } = a.ports;
      if (await this.kernel.check(key, udp, tcp)) continue;
      n['dns-rule']++;
      this.queue.push(`attach:${key}`, `re-install the resolver rule in ${key}`, () => this.kernel.install(key, udp, tcp));
    }
    return Object.fromEntries(Object.entries(n).filter(([, v]) => v > 0));
  }

  /** Graceful stop: waiting work dropped, every steering table removed, sockets closed. */
  async stop(): Promise<void> {
    this.queue.stop();
    await this.queue.idle();
    for (const [key, a] of this.sandboxes) {
      if (a.resolver) await this.detach(key, a);
    }
  }

  // ---- the jobs ---------------------------------------------------------------------------

  private async learn(networkId: string, endpointId: string, sandboxKey: string): Promise<void> {
    if (!this.sandboxes.get(sandboxKey)?.overlays.has(networkId)) return; // left meanwhile
    const names = namesOf(await this.inspect(networkId, endpointId), endpointId) ?? [];
    if (await this.d.setNames(networkId, endpointId, sandboxKey, names)) {
      this.names.changed();
      this.d.log.info({ networkId, endpointId, names }, 'learned the names of an overlay endpoint');
    }
  }

  /** Makes the sandbox's attachment match its overlays: attached while it has one, detached when none. */
  private async sync(sandboxKey: string): Promise<void> {
    const a = this.sandboxes.get(sandboxKey);
    if (!a) return;
    if (a.overlays.size === 0) {
      this.sandboxes.delete(sandboxKey);
      if (a.resolver) await this.detach(sandboxKey, a);
      return;
    }
    if (a.resolver) return;
    // At Join the namespace is not there yet: Docker binds it on the SandboxKey when the container starts (SetKey).
    const state = this.kernel.state(sandboxKey);
    if (state !== 'ready') {
      if (state === 'missing' && Date.now() - a.since > SANDBOX_APPEAR_MS) throw new GiveUp(`sandbox ${sandboxKey} is gone`);
      throw new Error(`sandbox ${sandboxKey} is not a network namespace yet`);
    }
    const t0 = Date.now();
    const s = await this.kernel.open(sandboxKey);
    const resolver = new ContainerResolver(s.udp, s.tcp, (m) => decide(m, (name) => this.names.lookup(a.overlays.values(), name)), (r, dec) => {
      this.d.onQuery?.(r);
      if (dec?.kind === 'answer') this.d.log.debug({ sandboxKey, name: dec.name, type: dec.type, addresses: dec.addresses }, 'dns answer');
    });
    try {
      await this.kernel.install(sandboxKey, s.udpPort, s.tcpPort);
    } catch (err) {
      resolver.close();
      throw err;
    }
    a.resolver = resolver;
    a.ports = { udp: s.udpPort, tcp: s.tcpPort };
    this.d.log.info({ sandboxKey, udpPort: s.udpPort, tcpPort: s.tcpPort, ms: Date.now() - t0 }, 'resolver attached');
  }

  private async detach(sandboxKey: string, a: Attachment): Promise<void> {
    a.resolver?.close();
    a.resolver = undefined;
    try {
      if (this.kernel.state(sandboxKey) === 'ready') await this.kernel.remove(sandboxKey);
      this.d.log.info({ sandboxKey }, 'resolver detached');
    } catch (err) {
      this.d.log.warn({ sandboxKey, err: String(err) }, 'could not remove the resolver rule (the container may be gone)');
    }
  }

  // ---- the names --------------------------------------------------------------------------

  private *namedEndpoints(): Iterable<NamedEndpoint> {
    const { cluster } = this.d;
    for (const { record, endpoints } of this.d.networks.list()) {
      if (!record.overlay) continue;
      for (const ep of endpoints) {
        if (!ep.sandboxKey || !ep.dnsNames?.length) continue;
        yield { overlay: record.overlay.key, names: ep.dnsNames, host: cluster.hostId, local: true, ...addressesOf(ep) };
      }
    }
    for (const [overlay, eps] of cluster.remote) {
      for (const ep of eps.values()) {
        if (!Array.isArray(ep.names) || !cluster.hostRegistered(ep.host) || cluster.retiring(ep)) continue;
        yield { overlay, names: ep.names, host: ep.host, local: false, ...(ep.ip ? { ip: ep.ip } : {}), ...(ep.ip6 ? { ip6: ep.ip6 } : {}) };
      }
    }
  }
}

function addressesOf(ep: EndpointRecord): { ip?: string; ip6?: string } {
  const strip = (a: string): string => a.replace(/\/\d+$/, '');
  return { ...(ep.address ? { ip: strip(ep.address) } : {}), ...(ep.addressV6 ? { ip6: strip(ep.addressV6) } : {}) };
}
