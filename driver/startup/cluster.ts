/**
 * Cluster mode (--etcd) at start-up: this host's VTEP and underlay MTU, the etcd store,
 * the agent with its events, the cluster side of the IPAM, and the views of the cluster
 * that loomctl shows (status, peers).
 */
import type { Config } from '../config';
import { LoomError, unavailable } from '../../lib/errors';
import { isClusterUnavailable } from '../../lib/cluster/health';
import { keys } from '../../lib/cluster/store';
import type { ClusterCoordinator } from '../cluster/coordinator';
import { remotePolicyEndpoints } from '../cluster/policy-peers';
import type { NetworkLookup } from '../network/network-table';
import type { PolicyService, PolicyServiceDeps } from '../ops/policy-service';
import type { PolicyRecord } from '../store/policy-repo';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import { createClaimConflicts, createClusterPools } from '../../ipam-driver/index';
import type { ClaimConflicts, ClusterPools } from '../../ipam-driver/index';
import { ClusterAgent, ClusterEvents } from '../cluster/agent';
import { loadEtcdTls } from '../cluster/etcd-tls';
import { LazyEtcdStore } from '../cluster/lazy-store';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { ClusterStatus } from '../ops/admin';
import { VERSION } from '../version';

export interface ClusterMember {
  agent: ClusterAgent;
  /** The agent's events (the coordinator subscribes when it is built). */
  events: ClusterEvents;
  pools: ClusterPools;
  conflicts: ClaimConflicts;
}

/** Joins (asynchronously: the agent retries in the background) the cluster named by `config.etcd`. */
export async function joinCluster(config: Config, hostId: string, kernel: NetlinkKernel, log: Logger): Promise<ClusterMember> {
  // Bad TLS settings stop loomd here, with the flag and file named, not at every call later.
  const credentials = loadEtcdTls(config.etcd);
  const addresses = await kernel.listAddresses();
  const links = await kernel.listLinks();
  let vtep = config.advertiseAddress;
  if (!vtep) {
    const def = (await kernel.listRoutes()).find((r) => r.prefix.family === 4 && r.prefix.len === 0);
    const found = addresses.find((a) => a.family === 4 && a.index === def?.index)?.cidr;
    if (!found) throw new LoomError('invalid', 'cluster mode needs this host\'s VXLAN address: pass --advertise-address (no IPv4 default route found)');
    vtep = stripLength(found);
  }
  const holder = addresses.find((a) => stripLength(a.cidr) === vtep);
  if (!holder) throw new LoomError('invalid', `--advertise-address ${vtep} is not an address of this host`);
  const underlayMtu = links.find((l) => l.index === holder.index)?.mtu ?? 1500;
  const store = new LazyEtcdStore({ endpoints: config.etcd.endpoints, ...(credentials ? { credentials } : {}) }, log.child({ svc: 'etcd' }));
  const events = new ClusterEvents();
  const agent = new ClusterAgent(store, { hostId, vtep, underlayMtu, version: VERSION }, log.child({ svc: 'cluster' }), { leaseTtlS: config.leaseTtlS, peerGraceS: config.peerGraceS, events });
  log.info({ hostId, vtep, underlayMtu, etcd: config.etcd.endpoints, tls: credentials !== undefined }, 'cluster mode');
  const ipamLog = log.child({ svc: 'cluster-ipam' });
  const conflicts = createClaimConflicts(ipamLog);
  const pools = createClusterPools(agent.store, hostId, ipamLog, { writes: agent.writes, background: agent.background, knownClaims: () => [...agent.claims.values()], conflicts, health: agent.health });
  return { agent, events, pools, conflicts };
}

/** The cluster part of `loomctl status` and `doctor`: etcd's state as this host sees it. */
export function clusterStatus(c: ClusterMember): ClusterStatus {
  const { agent } = c;
  return {
    hostId: agent.hostId,
    vtep: agent.me.vtep,
    healthy: !agent.health.isDown,
    etcd: agent.health.view(),
    reconnecting: agent.session.reconnecting,
    session: agent.session.stats,
    backlog: agent.backlog,
    hosts: agent.hosts.size,
    claimConflicts: c.conflicts.list(),
  };
}

/** `loomctl peers`: the cluster's hosts and overlays as this host sees them. */
export function peersView(c: ClusterMember): unknown {
  const { agent } = c;
  return {
    cluster: true,
    self: agent.hostId,
    hosts: [...agent.hosts.values()].map((h) => ({ ...h, leaseAgeSeconds: Math.round((Date.now() - Date.parse(h.startedAt)) / 1000) })),
    overlays: [...agent.overlays.values()].map((o) => ({ key: o.key, vni: o.vni, name: o.name, origin: o.origin, mtu: o.mtu, remoteEndpoints: agent.remote.get(o.key)?.size ?? 0 })),
  };
}

/**
 * Network policy in cluster mode (docs/policy.md, "Across hosts"): policies are written to
 * etcd (`/loom/v1/policies/<name>`, one transaction per file), other hosts' overlay endpoints
 * are peers, and learned labels are published with this host's overlay endpoints.
 */
export function clusterPolicyDeps(c: ClusterMember, table: NetworkLookup, coordinator: () => ClusterCoordinator | undefined): Pick<PolicyServiceDeps, 'cluster' | 'remote' | 'onLabels'> {
  const { agent } = c;
  return {
    cluster: {
      async write(put: PolicyRecord[], remove: string[]): Promise<void> {
        const writes = [...put.map((r) => ({ key: keys.policy(r.policy.name), value: r as unknown })), ...remove.map((n) => ({ key: keys.policy(n), value: undefined }))];
        try {
          await agent.store.commit([], writes);
        } catch (err) {
          if (isClusterUnavailable(err)) throw unavailable(`policies of a cluster are kept in the cluster store (etcd), which is unreachable: nothing changed (${err.message})`);
          throw err;
        }
      },
    },
    remote: () => {
      const overlays = new Map<string, string>();
      for (const { record } of table.list()) if (record.overlay) overlays.set(record.overlay.key, record.id);
      return remotePolicyEndpoints(overlays, agent.remote);
    },
    onLabels: (networkId, endpointId) => {
      const net = table.list().find((n) => n.record.id === networkId);
      const ep = net?.endpoints.find((e) => e.id === endpointId);
      if (net?.record.overlay && ep?.sandboxKey) coordinator()?.endpointUp(net.record, ep);
    },
  };
}

/** Every loomd follows etcd's policies through the session's watch (listing at start and after each re-creation). */
export function watchClusterPolicies(c: ClusterMember, policies: PolicyService): void {
  c.agent.session.addWatch<PolicyRecord>({
    prefix: keys.policies,
    onResync: (all) => policies.clusterResync(all.map((kv) => kv.value)),
    onEvent: (ev) => policies.clusterEvent(ev.key.slice(keys.policies.length), ev.type === 'put' ? ev.value : undefined),
  });
  // A remote endpoint came, went or changed its labels: the peer sets follow (coalesced).
  c.events.listen({ onRemoteEndpoint: () => policies.requestSync() });
}
