/**
 * loomd's composition root (main.ts is the bootstrap that opens the socket first). Every
 * part is built once, here, with what it needs passed to its constructor; nothing is wired
 * after construction and no module keeps state of its own.
 * Start-up order: open the store and load state (fast), listen on the socket, then repair
 * the data plane in the background; never wait for Docker or etcd.
 * Modules only some set-ups need are loaded when used, never on the way to the first real call:
 * cluster mode's (the agent, the overlay coordinator, service discovery; etcd3 on the first
 * cluster call) only with --etcd, the admin API's after the plugin socket serves real calls,
 * dockerode on the first Docker call, prom-client with --metrics, yaml on the first YAML policy file.
 */
import type * as http from 'node:http';
import type { Config } from './config';
import { DEFAULT_IPV4_POOLS } from './config';
import type { EarlySocket } from './http/early-socket';
import type { Logger } from '../lib/logger';
import { createIpam, ipamRoutes, parseDefaultPool } from '../ipam-driver/index';
import { activateRoute, networkRoutes } from './api/network-handlers';
import type { ClusterCoordinator } from './cluster/coordinator';
import { BridgeDataPlane } from './dataplane/bridge';
import { OverlayNetns } from './kernel/overlay-netns';
import { runCommand } from './kernel/command';
import { TrafficControl } from './kernel/tc';
import { NftFirewall } from './firewall/nft-firewall';
import { PolicyFirewall, policyFamilies } from './firewall/policy-firewall';
import { PolicyService } from './ops/policy-service';
import { PolicyRepository } from './store/policy-repo';
import { firewallNames } from './firewall/render';
import { createPluginApp, listenUnix } from './http/server';
import { ownerMark } from './kernel/link-owner';
import { NetlinkKernel } from './kernel/netlink-kernel';
import { Sysctl } from './kernel/sysctl';
import type { ServiceDiscovery } from './dns/discovery';
import { checkNetnsDir } from './kernel/mount-propagation';
import { NetnsPaths } from './kernel/netns-file';
import { sharedInspect } from './dns/learn';
import { EndpointEvents } from './network/endpoint-events';
import { createNetworkStack } from './network/stack';
import type { Metrics } from './ops/metrics';
import { dockerViewSource } from './reconcile/docker-view';
import { DEFAULT_RECONCILE, Reconciler } from './reconcile/reconciler';
import type { ClusterMember } from './startup/cluster';
import { closeServers, lazyDocker, listenMetrics, restoreDataPlane } from './startup/listeners';
import { openState } from './startup/state';
import type { OpenState } from './startup/state';
import { NetworkRepository } from './store/network-repo';
import { VERSION } from './version';

export interface Daemon {
  stop(): Promise<void>;
}

/** The store the bootstrap (main.ts) started opening (after logging the configuration's warnings) while it loaded loomd's modules. */
export interface OpeningState {
  state: Promise<OpenState>;
  /** When it started opening it (Date.now()): loomd's start-up time counts from there. */
  since: number;
}

/** Starts loomd; `early` is the plugin socket the bootstrap (main.ts) already opened. */
export async function startDaemon(config: Config, log: Logger, early?: EarlySocket, opening?: OpeningState): Promise<Daemon> {
  const started = opening?.since ?? Date.now();
  if (!opening) for (const w of config.warnings) log.warn(w);
  const { kv, host, snapshots } = await (opening?.state ?? openState(config.stateDir, log));
  // This loomd's identity on the host (stored with its state): every link it makes carries the mark.
  const instance = host.hostId;
  const kernel = new NetlinkKernel(ownerMark(instance));
  // Heavy modules load only when used: prom-client with --metrics, dockerode on the first
  // reconcile pass, etcd3 on the first cluster call; the socket answers before any of them.
  const metrics: Metrics | undefined = config.metrics ? new (await import('./ops/metrics')).Metrics(log.child({ svc: 'metrics' })) : undefined;
  kernel.onError = (errno) => metrics?.kernelErrors.inc({ errno });
  const docker = config.dockerSocket ? lazyDocker(config.dockerSocket) : undefined;
  // One inspect per Join, shared by service discovery (names) and network policy (labels).
  const inspect = docker ? sharedInspect(docker) : undefined;
  const defaultPools = config.defaultPools.length ? config.defaultPools : [...DEFAULT_IPV4_POOLS.map(parseDefaultPool), parseDefaultPool(`${host.ula}:64`)];

  // Cluster mode (--etcd): the store, this host's member, cluster-wide IPAM; its modules load only then.
  const clusterMode = config.etcd.endpoints.length ? await loadClusterModules() : undefined;
  const cluster: ClusterMember | undefined = clusterMode ? await clusterMode.startup.joinCluster(config, host.hostId, kernel, log) : undefined;
  const ipam = createIpam(
    kv,
    {
      defaultPools,
      hostRoutes: async () => (await kernel.listRoutes()).map((r) => r.prefix),
      ...(cluster ? { cluster: { pools: cluster.pools, overlayReserved: (k: string) => cluster.agent.overlayReserved(k) } } : {}),
    },
    log.child({ svc: 'ipam' }),
  );

  // Networks: one table, the services over it, the cluster's side of overlays.
  // Where SandboxKeys are opened: a managed plugin sees Docker's netns directory at --netns-dir.
  const netns = new NetnsPaths(config.netnsDir);
  if (config.netnsDir) {
    const problem = checkNetnsDir(config.netnsDir);
    if (problem) log.warn({ netnsDir: config.netnsDir }, problem);
  }
  const overlayNs = { kernel, netns: new OverlayNetns(), tc: new TrafficControl(), procSys: config.procSys };
  const dataplane = new BridgeDataPlane(kernel, log.child({ svc: 'bridge' }), { sysctl: new Sysctl(config.procSys), netns, overlayNs });
  let built: ClusterCoordinator | undefined;
  const endpointEvents = new EndpointEvents();
  const { table, firewall, networks, endpoints, ports, repairs, background } = createNetworkStack({
    repo: new NetworkRepository(kv),
    dataplane,
    firewall: new NftFirewall(log.child({ svc: 'firewall' }), firewallNames(instance)),
    log: log.child({ svc: 'network' }),
    events: endpointEvents,
    // The policy service is built below, over this table; this is only called once it exists.
    policed: (networkId) => policies.covers(networkId),
    ...(cluster && clusterMode
      ? {
          overlay: (lookup) =>
            (built = new clusterMode.ClusterCoordinator({
              ...cluster,
              ipam,
              kernel,
              networks: lookup,
              propagator: docker ? new clusterMode.DockerPropagator(docker, cluster.agent, config.driverName, log.child({ svc: 'propagate' })) : undefined,
              log: log.child({ svc: 'cluster' }),
              // Built below, over this table; only called once it exists.
              labelsOf: (n, e) => policies.labelsOf(n, e),
            })),
        }
      : {}),
  });
  const coordinator = built as ClusterCoordinator | undefined;
  // Network policy (docs/policy.md): labels learned after Join, enforced in loomd's policy table.
  const policies = new PolicyService({
    repo: new PolicyRepository(kv),
    networks: table,
    firewall: new PolicyFirewall(log.child({ svc: 'policy' }), instance, () => policyFamilies(config.procSys), runCommand, {
      list: () => table.list().flatMap((n) => (n.record.overlay?.ns && overlayNs.netns.exists(n.record.overlay.ns.netns) ? [n.record.overlay.ns.netns] : [])),
      nft: (ns, script) => overlayNs.netns.nft(ns, script),
    }),
    syncMainFirewall: () => firewall.sync(),
    ...(inspect ? { inspect } : {}),
    log: log.child({ svc: 'policy' }),
    ...(metrics ? { onLabelWindow: (ms: number) => metrics.policyLabelWindow.observe(ms / 1000) } : {}),
    ...(cluster && clusterMode ? clusterMode.startup.clusterPolicyDeps(cluster, table, () => coordinator) : {}),
  });
  endpointEvents.listen(policies);
  if (cluster && clusterMode) clusterMode.startup.watchClusterPolicies(cluster, policies);
  // Service discovery on overlays (cluster mode with the Docker API): names learned and resolvers attached in the background.
  const discovery: ServiceDiscovery | undefined =
    cluster && clusterMode && docker
      ? new clusterMode.ServiceDiscovery({
          networks: table,
          cluster: {
            hostId: cluster.agent.hostId,
            remote: cluster.agent.remote,
            hostRegistered: (h) => cluster.agent.hosts.has(h),
            retiring: (ep) => cluster.agent.endpoints.isRetiring(ep),
          },
          docker,
          netns,
          ...(inspect ? { inspect } : {}),
          setNames: (n, e, s, names) => endpoints.setNames(n, e, s, names),
          log: log.child({ svc: 'dns' }),
          ...(metrics ? { onQuery: (result: string) => metrics.dnsQueries.inc({ result }) } : {}),
        })
      : undefined;
  if (discovery) {
    endpointEvents.listen(discovery);
    cluster?.events.listen({ onRemoteEndpoint: () => discovery.remoteChanged() });
  }

  const reconcileLog = log.child({ svc: 'reconcile' });
  let dockerErrorLogged = false;
  const reconciler = new Reconciler({
    onRepair: (kind, n) => metrics?.repairs.inc({ kind }, n),
    networks: table,
    repairs,
    ipam,
    kernel,
    firewall,
    netns,
    overlayNs: overlayNs.netns,
    docker: docker
      ? dockerViewSource(docker, (err) => {
          // Logged once until Docker answers again: it is down normally during its restarts.
          if (!dockerErrorLogged) reconcileLog.info({ err: String(err) }, 'Docker API not reachable: Docker-dependent repairs wait');
          dockerErrorLogged = true;
        }, () => (dockerErrorLogged = false))
      : undefined,
    log: reconcileLog,
    // Overlay VXLAN entries, and shared pools' loans and reservations against etcd.
    extraRepairs: async () => ({
      ...(await policies.repair()),
      ...(coordinator ? { ...(await coordinator.repairOverlays()), ...(await ipam.resyncShared()), ...(await discovery?.repair()) } : {}),
    }),
    options: {
      ...DEFAULT_RECONCILE,
      intervalMs: config.reconcileIntervalS * 1000,
      graceMs: config.reconcileGraceS * 1000,
      confirmMs: Math.min(DEFAULT_RECONCILE.confirmMs, config.reconcileIntervalS * 1000),
    },
  });
  await ipam.load();
  await policies.load();
  await table.load();

  const app = createPluginApp([activateRoute, ...networkRoutes({ networks, endpoints, ports }, config.scope), ...ipamRoutes(ipam)], log, metrics ? (e) => metrics.observeCall(e) : undefined, {
    accountEtcdWaits: cluster !== undefined, // (calls wait on etcd only in cluster mode)
  });
  metrics?.attach({ networks: table, ipam, kernel, ...(cluster ? { agent: cluster.agent, claimConflicts: cluster.conflicts } : {}), containerNames: () => reconciler.containerNames, policyCounters: () => policies.counters() });
  let server: http.Server;
  if (early) {
    early.ready(app);
    server = early.server;
  } else {
    server = await listenUnix(app, config.socket, config.socketMode);
  }
  const metricsServer = metrics && config.metrics ? await listenMetrics(metrics, config.metrics) : undefined;
  const names = firewallNames(instance);
  // The plugin socket serves real calls from here; the admin API's modules load after the
  // calls that waited for the state were handed over (setImmediate: after pending I/O).
  const admin = config.adminSocket
    ? await listenUnix(
        (await loadAdminModule()).createAdminApp({
          version: VERSION,
          startedAt: new Date(started),
          stateDir: config.stateDir,
          owner: { instance, mark: ownerMark(instance), nftTable: names.table, iptablesChain: names.chain },
          networks: table,
          ipam,
          reconciler,
          policies,
          ...(discovery && cluster
            ? {
                names: (network?: string) =>
                  discovery.names
                    .list()
                    .map((r) => ({ ...r, network: cluster.agent.overlays.get(r.overlay)?.name ?? r.overlay }))
                    .filter((r) => network === undefined || r.overlay === network || r.network === network),
              }
            : {}),
          ...(cluster && clusterMode && coordinator
            ? { overlayDrift: () => coordinator.overlayDrift(), cluster: () => clusterMode.startup.clusterStatus(cluster), peers: () => clusterMode.startup.peersView(cluster) }
            : {}),
        }),
        config.adminSocket,
        0o600,
      )
    : undefined;
  const listed = table.list();
  log.info(
    {
      version: VERSION,
      socket: config.socket,
      stateDir: config.stateDir,
      owner: ownerMark(instance),
      networks: listed.length,
      endpoints: listed.reduce((n, c) => n + c.endpoints.length, 0),
      startMs: Date.now() - started,
    },
    'loomd listening',
  );

  // Joining the cluster never delays the socket: the agent retries in the background.
  if (cluster) {
    coordinator?.restore();
    await cluster.agent.start();
  }

  // A snapshot after every change (at most one a minute), and now if the store moved on since the newest.
  kv.onCommit = () => snapshots.changed();
  snapshots.changed();

  // Slow work after the socket is up: re-create what a reboot wiped.
  const restoring = restoreDataPlane(table, repairs, ports, log)
    .catch((err) => log.error({ err: String(err) }, 'data plane restore failed'))
    // The policy table left by the previous loomd keeps enforcing until this replaces it.
    .then(() => policies.sync(true).catch((err) => log.error({ err: String(err) }, 'policy restore failed: the reconciler retries')))
    .then(() => {
      discovery?.restore();
      reconciler.start();
    });

  return {
    async stop(): Promise<void> {
      // Finish the calls in flight (bounded), refuse new ones, keep the data plane as it is.
      await closeServers([server, admin, metricsServer]);
      await restoring;
      await background.settle();
      // Docker's resolver answers the containers directly while loomd is away.
      await discovery?.stop();
      await reconciler.stop();
      // The policy table stays in the kernel and keeps enforcing while loomd is away.
      await policies.stop();
      await cluster?.agent.stop();
      await kernel.close();
      await snapshots.stop();
      await kv.close();
    },
  };
}

/** Cluster mode's modules (the agent and etcd store, the overlay coordinator, service discovery): loaded only with --etcd. */
async function loadClusterModules(): Promise<{
  startup: typeof import('./startup/cluster');
  ClusterCoordinator: typeof import('./cluster/coordinator').ClusterCoordinator;
  DockerPropagator: typeof import('./cluster/propagator').DockerPropagator;
  ServiceDiscovery: typeof import('./dns/discovery').ServiceDiscovery;
}> {
  const [startup, { ClusterCoordinator }, { DockerPropagator }, { ServiceDiscovery }] = await Promise.all([
    import('./startup/cluster'),
    import('./cluster/coordinator'),
    import('./cluster/propagator'),
    import('./dns/discovery'),
  ]);
  return { startup, ClusterCoordinator, DockerPropagator, ServiceDiscovery };
}

/** The admin API's module, loaded once the plugin socket serves real calls (after pending I/O). */
async function loadAdminModule(): Promise<typeof import('./ops/admin')> {
  await new Promise((r) => setImmediate(r));
  return import('./ops/admin');
}
