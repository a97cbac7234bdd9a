/**
 * The reconciler's brain: a pure function from what loom's store, the kernel and
 * (when reachable) Docker each hold, to the list of repairs. No I/O here: it is
 * unit-tested with plain objects.
 *
 * Repairs of loom's own objects (a bridge a reboot wiped, firewall drift) are
 * planned at once. Removing things (orphan links, stale endpoints and networks,
 * orphan allocations and pools) needs two sightings `confirmMs` apart and an
 * object older than `graceMs`, so a call in flight (veth created, record not yet
 * written; address requested, endpoint not yet created) is never mistaken for
 * an orphan.
 *
 * Links are judged by their owner mark, never by name: only links carrying this loomd's
 * mark can be orphans; links another loomd marked do not exist for this one; unmarked
 * links are someone else's unless one of this loomd's records names them (an earlier
 * loom made them: they are marked).
 */
import type { DockerView } from './docker-view';
import { LOCAL_SPACE } from '../../ipam-driver/index';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import { bridgeAddresses } from '../model/records';
import type { LinkOwner } from '../kernel/link-owner';
import { canonicalIp, contains, parseIpMaybeCidr, parsePrefix } from '../../lib/prefix';

export interface ObservedPool {
  id: string;
  pool: string;
  createdAt: string;
  allocations: Array<{ address: string; kind: string; createdAt: string }>;
}

export interface ObservedLink {
  name: string;
  kind: string | undefined;
  up: boolean;
  /** Whose mark it carries, seen from this loomd. */
  owner: LinkOwner;
  /** No mark, and one of this loomd's temporary names: a create killed half-way (link-owner.ts). */
  unfinished?: boolean;
}

export interface Observed {
  /** When the observation started (ms since the epoch). */
  at: number;
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  pools: ObservedPool[];
  links: ObservedLink[];
  /** bridge name -> addresses (CIDR) present on it */
  bridgeAddresses: Map<string, string[]>;
  /** Differences between the firewall in the kernel and its rendering (empty: in sync). */
  firewallDrift: string[];
  /** Docker's view, or undefined when dockerd could not be asked. */
  docker: DockerView | undefined;
  /** Endpoints whose host veth is gone but whose container's network namespace (SandboxKey) still exists. */
  liveSandboxes: Set<string>;
  /**
   * The links inside each overlay namespace of this loomd's records (`overlay.ns.netns`), by
   * namespace name; a namespace that does not exist has no entry. Absent: none observed.
   */
  nsLinks?: Map<string, ObservedLink[]>;
}

export type Action =
  | { kind: 'restore-network'; networkId: string; reason: string }
  | { kind: 'sync-firewall'; reason: string }
  | { kind: 'delete-orphan-link'; name: string; reason: string }
  | { kind: 'mark-link'; name: string; reason: string }
  | { kind: 'remove-stale-endpoint'; networkId: string; endpointId: string; reason: string }
  | { kind: 'remove-stale-network'; networkId: string; reason: string }
  | { kind: 'release-orphan-address'; poolId: string; address: string; reason: string }
  | { kind: 'release-orphan-pool'; poolId: string; reason: string }
  | { kind: 'replumb-endpoint'; networkId: string; endpointId: string; reason: string }
  | { kind: 'restore-allocation'; poolId: string; address: string; allocKind: 'gateway' | 'explicit' | 'dynamic'; reason: string };

export interface PlanOptions {
  graceMs: number;
  confirmMs: number;
  /**
   * Skip the two-sightings rule for records (loomctl gc), whose age is known; the grace
   * still applies. Interface names carry no age, so orphan links always need two sightings.
   * 'all' (loomctl doctor's preview, which changes nothing) counts every suspect as confirmed.
   */
  force?: boolean | 'all';
}

export interface Plan {
  actions: Action[];
  /** Suspected orphans of this pass: key -> first seen (feed into the next pass). */
  suspects: Map<string, number>;
}


export function plan(obs: Observed, previous: ReadonlyMap<string, number>, opts: PlanOptions): Plan {
  const actions: Action[] = [];
  const suspects = new Map<string, number>();
  const old = (createdAt: string): boolean => Date.parse(createdAt) <= obs.at - opts.graceMs;
  /** Records a suspected orphan; true when it is confirmed (seen before, long enough ago). */
  const confirmed = (key: string, forceable = true): boolean => {
    const first = previous.get(key);
    suspects.set(key, first ?? obs.at);
    return opts.force === 'all' || (forceable && opts.force === true) || (first !== undefined && obs.at - first >= opts.confirmMs);
  };
  // Another loomd's links do not exist for this one (a record whose name it took is "missing").
  const links = new Map(obs.links.filter((l) => l.owner !== 'foreign').map((l) => [l.name, l]));
  const dockerNets = obs.docker?.networks;
  /** Whether Docker lists the endpoint (undefined: Docker's view of its network is unknown). */
  const dockerKnows = (e: EndpointRecord): boolean | undefined => dockerNets?.get(e.networkId)?.endpoints.has(e.id);

  // Links in overlay namespaces: an endpoint's host end lives there (names are unique per loomd).
  const inNs = new Map<string, ObservedLink>();
  for (const list of obs.nsLinks?.values() ?? []) for (const l of list) if (l.owner !== 'foreign') inNs.set(l.name, l);
  /** Whether an endpoint's host end exists, here or in its overlay's namespace. */
  const hostEndExists = (name: string): boolean => links.has(name) || inNs.has(name);

  // Networks: rebuild what the kernel lost; forget what Docker forgot.
  const staleNetworks = new Set<string>();
  for (const n of obs.networks) {
    if (dockerNets && !dockerNets.has(n.id) && old(n.createdAt)) {
      if (confirmed(`network:${n.id}`)) {
        actions.push({ kind: 'remove-stale-network', networkId: n.id, reason: 'Docker no longer knows this network' });
      }
      staleNetworks.add(n.id);
      continue;
    }
    const ns = n.overlay?.ns;
    if (ns && n.overlay) {
      const reason = nsNetworkProblem(n, ns, n.overlay.vxlan, links, obs);
      if (reason) actions.push({ kind: 'restore-network', networkId: n.id, reason });
      continue;
    }
    const br = links.get(n.bridge);
    const missing = bridgeAddresses(n).filter((a) => !(obs.bridgeAddresses.get(n.bridge) ?? []).includes(a.cidr));
    if (!br) actions.push({ kind: 'restore-network', networkId: n.id, reason: `bridge ${n.bridge} is missing` });
    else if (br.kind !== 'bridge') continue; // someone else's interface: reported by CreateNetwork's checks, never touched
    else if (!br.up) actions.push({ kind: 'restore-network', networkId: n.id, reason: `bridge ${n.bridge} is down` });
    else if (missing.length) actions.push({ kind: 'restore-network', networkId: n.id, reason: `bridge ${n.bridge} lacks ${missing.map((a) => a.cidr).join(', ')}` });
  }
  if (obs.firewallDrift.length) actions.push({ kind: 'sync-firewall', reason: obs.firewallDrift.join('; ') });

  // Endpoints: a veth pair that is gone means the container is gone, unless the container still
  // lives (its namespace exists and Docker, when asked, still lists it): then the pair is re-made.
  const removedEndpoints = new Set<string>();
  for (const e of obs.endpoints) {
    if (staleNetworks.has(e.networkId)) continue;
    const known = dockerKnows(e);
    // A repair, not a removal: no grace needed (a joined endpoint's host veth exists from the start).
    if (!hostEndExists(e.hostIf) && known !== false && obs.liveSandboxes.has(e.id)) {
      actions.push({ kind: 'replumb-endpoint', networkId: e.networkId, endpointId: e.id, reason: `veth ${e.hostIf} is gone while its container runs` });
      continue;
    }
    if (!old(e.createdAt)) continue;
    let reason: string | undefined;
    if (known === false) reason = 'Docker no longer knows this endpoint';
    else if (!hostEndExists(e.hostIf)) reason = `veth ${e.hostIf} is gone`;
    if (reason && confirmed(`endpoint:${e.id}`)) {
      actions.push({ kind: 'remove-stale-endpoint', networkId: e.networkId, endpointId: e.id, reason });
      removedEndpoints.add(e.id);
    }
  }

  // Addresses live endpoints, gateways and aux addresses use must stay allocated (someone may
  // have released one behind Docker's back); only for endpoints whose veth is still there.
  const poolsByPrefix = obs.pools
    .filter((p) => p.id.startsWith(`${LOCAL_SPACE}/`))
    .map((p) => ({ p, prefix: parsePrefix(p.pool), held: new Set(p.allocations.map((a) => a.address)) }));
  const needed: Array<{ address: string; why: string; allocKind: 'gateway' | 'explicit' | 'dynamic' }> = [];
  for (const n of obs.networks) {
    if (staleNetworks.has(n.id)) continue;
    for (const d of [...n.ipv4, ...n.ipv6]) {
      if (d.gateway) needed.push({ address: canonicalIp(d.gateway), why: `gateway of network ${n.id.slice(0, 12)}`, allocKind: 'gateway' });
      for (const [name, aux] of Object.entries(d.aux)) needed.push({ address: canonicalIp(aux), why: `aux address ${name} of network ${n.id.slice(0, 12)}`, allocKind: 'explicit' });
    }
  }
  for (const e of obs.endpoints) {
    if (staleNetworks.has(e.networkId) || !hostEndExists(e.hostIf)) continue;
    if (dockerKnows(e) === false) continue;
    for (const a of [e.address, e.addressV6]) if (a) needed.push({ address: canonicalIp(a), why: `endpoint ${e.id.slice(0, 12)}`, allocKind: 'dynamic' });
  }
  for (const { address, why, allocKind } of needed) {
    const ip = parseIpMaybeCidr(address);
    const owner = poolsByPrefix.find((x) => contains(x.prefix, ip));
    if (owner && !owner.held.has(address)) {
      actions.push({ kind: 'restore-allocation', poolId: owner.p.id, address, allocKind, reason: `${address} (${why}) is not allocated` });
    }
  }

  // Links: this loomd's mark and no record is an orphan; a record's link without a mark is an earlier loom's.
  /** Link name -> the kind a record says it is (borrowed bridges are someone else's: not listed). */
  const recorded = new Map<string, string>([
    ...obs.networks.flatMap((n): Array<[string, string]> => [
      ...(n.adoptedBridge || n.overlay?.ns ? [] : [[n.bridge, 'bridge'] as [string, string]]),
      ...(n.overlay ? [[n.overlay.vxlan, 'vxlan'] as [string, string]] : []),
      ...(n.overlay?.ns ? ([[n.overlay.ns.gatewayIf, 'veth'], [n.overlay.ns.gatewayPeer, 'veth'], [n.overlay.ns.tunnelIf, 'veth'], [n.overlay.ns.tunnelPeer, 'veth']] as Array<[string, string]>) : []),
    ]),
    ...obs.endpoints.flatMap((e): Array<[string, string]> => [[e.hostIf, 'veth'], [e.peerIf, 'veth'], ...(e.ifb ? [[e.ifb, 'ifb'] as [string, string]] : [])]),
  ]);
  const borrowed = new Set(obs.networks.filter((n) => n.adoptedBridge).map((n) => n.bridge));
  for (const l of obs.links) {
    if (l.owner === 'self' && !recorded.has(l.name) && !borrowed.has(l.name) && confirmed(`link:${l.name}`, false)) {
      actions.push({ kind: 'delete-orphan-link', name: l.name, reason: `it carries this loomd's mark but no ${l.kind === 'bridge' || l.kind === 'vxlan' ? 'network' : 'endpoint'} owns it` });
    }
    // Seen on two passes: a create in progress renames its link within milliseconds.
    if (l.unfinished && confirmed(`link:${l.name}`, false)) {
      actions.push({ kind: 'delete-orphan-link', name: l.name, reason: 'it is under one of this loomd\'s temporary names: a create that was killed before it named and marked the link' });
    }
    if (l.owner === 'none' && recorded.has(l.name) && recorded.get(l.name) === l.kind) {
      actions.push({ kind: 'mark-link', name: l.name, reason: 'it is named in this loomd\'s records but carries no owner mark (made by an earlier loom)' });
    }
  }

  // IPAM: only with Docker's view, which also covers networks of other drivers using loom's IPAM.
  if (dockerNets) {
    const usedSubnets = new Set<string>([...obs.networks.flatMap((n) => [...n.ipv4, ...n.ipv6].map((d) => d.pool))]);
    const accounted = new Set<string>();
    for (const n of obs.networks) {
      for (const d of [...n.ipv4, ...n.ipv6]) {
        if (d.gateway) accounted.add(canonicalIp(d.gateway));
        for (const aux of Object.values(d.aux)) accounted.add(canonicalIp(aux));
      }
    }
    for (const e of obs.endpoints) {
      if (removedEndpoints.has(e.id)) continue;
      for (const a of [e.address, e.addressV6]) if (a) accounted.add(canonicalIp(a));
    }
    /** address -> endpoint id, for the endpoints removed in this pass. */
    const releasedWithEndpoint = new Map(
      obs.endpoints
        .filter((e) => removedEndpoints.has(e.id))
        .flatMap((e) => [e.address, e.addressV6].filter((a): a is string => Boolean(a)).map((a): [string, string] => [canonicalIp(a), e.id])),
    );
    for (const dn of dockerNets.values()) {
      dn.subnets.forEach((s) => usedSubnets.add(s));
      dn.reserved.forEach((a) => accounted.add(a));
      for (const addrs of dn.endpoints.values()) addrs.forEach((a) => accounted.add(a));
    }
    for (const p of obs.pools) {
      if (!usedSubnets.has(p.pool) && old(p.createdAt)) {
        if (confirmed(`pool:${p.id}`)) actions.push({ kind: 'release-orphan-pool', poolId: p.id, reason: 'no network uses this pool' });
        continue;
      }
      for (const a of p.allocations) {
        // A gateway lives as long as its pool (Docker does not show gateways it did not get from the user).
        // Foreign: held here for a container on another host (the local Docker never lists it);
        // quarantine: released, kept out of use on purpose. Shared-pool bookkeeping settles both
        // with etcd (ipam-driver/shared-resync.ts); releasing them here could hand a remote
        // container's address to a local one.
        if (a.kind === 'gateway' || a.kind === 'quarantine' || a.kind === 'foreign' || accounted.has(a.address) || !old(a.createdAt)) continue;
        // The address of an endpoint confirmed stale in this pass goes with it: the same two sightings
        // (Docker lists neither the endpoint nor anything holding the address) confirm both.
        const withEndpoint = releasedWithEndpoint.get(a.address);
        if (withEndpoint || confirmed(`address:${p.id}|${a.address}`)) {
          const reason = withEndpoint ? `only stale endpoint ${withEndpoint.slice(0, 12)} held it` : 'no endpoint, gateway or aux address holds it';
          actions.push({ kind: 'release-orphan-address', poolId: p.id, address: a.address, reason });
        }
      }
    }
  }
  return { actions, suspects };
}

/**
 * What is wrong with an overlay network's namespace layout (overlay-ns.ts), or undefined: the
 * namespace with its bridge (up) and the namespace ends of both veths; in the host's namespace
 * the gateway veth (up, with the gateway addresses), the tunnel veth and the VXLAN device.
 */
function nsNetworkProblem(n: NetworkRecord, ns: NonNullable<NonNullable<NetworkRecord['overlay']>['ns']>, vxlan: string, links: Map<string, ObservedLink>, obs: Observed): string | undefined {
  const inside = obs.nsLinks?.get(ns.netns);
  if (!obs.nsLinks) return undefined;
  if (!inside) return `namespace ${ns.netns} is missing`;
  const mine = new Map(inside.filter((l) => l.owner !== 'foreign').map((l) => [l.name, l]));
  const br = mine.get(n.bridge);
  if (!br) return `bridge ${n.bridge} is missing in ${ns.netns}`;
  if (!br.up) return `bridge ${n.bridge} in ${ns.netns} is down`;
  for (const p of [ns.gatewayPeer, ns.tunnelPeer]) if (!mine.has(p)) return `port ${p} is missing in ${ns.netns}`;
  const gw = links.get(ns.gatewayIf);
  if (!gw) return `gateway veth ${ns.gatewayIf} is missing`;
  if (!gw.up) return `gateway veth ${ns.gatewayIf} is down`;
  const missing = bridgeAddresses(n).filter((a) => !(obs.bridgeAddresses.get(ns.gatewayIf) ?? []).includes(a.cidr));
  if (missing.length) return `gateway veth ${ns.gatewayIf} lacks ${missing.map((a) => a.cidr).join(', ')}`;
  if (!links.has(ns.tunnelIf)) return `tunnel veth ${ns.tunnelIf} is missing`;
  if (!links.has(vxlan)) return `vxlan ${vxlan} is missing`;
  return undefined;
}
