/**
 * loomd's composition root (main.ts is the bootstrap that opens the socket first).
 * Wires config, store, kernel, firewall, IPAM and network services and the HTTP
 * edge; no module-level singletons elsewhere.
 * Start-up order: open the store and load state (fast), listen on the socket,
 * then repair the data plane in the background; never wait for Docker.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { Config, DEFAULT_IPV4_POOLS } from './config';
import type { EarlySocket } from './http/early-socket';
import { LoomError, asLoomError } from '../lib/errors';
import { ClusterAgent } from './cluster/agent';
import { ClusterCoordinator } from './cluster/coordinator';
import { LazyEtcdStore } from './cluster/lazy-store';
import { DockerPropagator } from './cluster/propagator';
import { loadEtcdTls } from './cluster/etcd-tls';
import { NftFirewall } from './firewall/nft-firewall';
import { firewallNames } from './firewall/render';
import { createPluginApp, listenUnix } from './http/server';
import { NetlinkKernel } from './kernel/netlink-kernel';
import { ownerMark } from './kernel/link-owner';
import { Sysctl } from './kernel/sysctl';
import { BridgeDataPlane } from './dataplane/bridge';
import { activateRoute, networkRoutes } from './api/network-handlers';
import { NetworkService } from './network/network-service';
import type { Logger } from '../lib/logger';
import { ClusterStatus, createAdminApp } from './ops/admin';
import type { Metrics } from './ops/metrics';
import { ensureHostMeta } from './store/host-meta';
import { newestSnapshotSeq, SnapshotScheduler } from './store/snapshot';
import { openStateStore } from './store/store-integrity';
import { NetworkRepository } from './store/network-repo';
import { ensureSchema } from './store/schema';
import { createClaimConflicts, createClusterPools, createIpam, ipamRoutes, parseDefaultPool } from '../ipam-driver/index';
import type { ClaimConflicts, ClusterPools } from '../ipam-driver/index';
import { StepRunner } from './dataplane/steps';
import type Dockerode from 'dockerode';
import { dockerViewSource } from './reconcile/docker-view';
import { DEFAULT_RECONCILE, Reconciler } from './reconcile/reconciler';

import { VERSION } from './version';

/** At most one store snapshot per this interval, taken only after changes (snapshot.ts). */
const SNAPSHOT_INTERVAL_MS = 60_000;

export interface Daemon {
  stop(): Promise<void>;
}

/** Starts loomd; `early` is the plugin socket the bootstrap (main.ts) already opened. */
export async function startDaemon(config: Config, log: Logger, early?: EarlySocket): Promise<Daemon> {
  const started = Date.now();
  for (const w of config.warnings) log.warn(w);
  prepareStateDir(config.stateDir, log);
  // Refuses a damaged store or one that lost acknowledged writes (store-integrity.ts).
  const store = await openStateStore(config.stateDir, log);
  const kv = store.kv;
  log.info({ created: store.created, ...store.counts, seq: kv.seq }, store.created ? 'state store created (new state directory)' : 'state store opened and verified');
  try {
    await ensureSchema(kv);
  } catch (err) {
    await kv.close();
    throw err;
  }
  const snapshots = new SnapshotScheduler(kv, config.stateDir, log.child({ svc: 'store' }), SNAPSHOT_INTERVAL_MS, newestSnapshotSeq(config.stateDir));
  const host = await ensureHostMeta(kv);
  // This loomd's identity on the host (stored with its state): every link it makes carries the mark.
  const instance = host.hostId;
  const kernel = new NetlinkKernel(ownerMark(instance));
  // Heavy modules load only when used: prom-client with --metrics, dockerode on the first
  // reconcile pass, etcd3 on the first cluster call; the socket answers before any of them.
  const metrics: Metrics | undefined = config.metrics ? new (await import('./ops/metrics')).Metrics(log.child({ svc: 'metrics' })) : undefined;
  kernel.onError = (errno) => metrics?.kernelErrors.inc({ errno });
  const docker = config.dockerSocket ? lazyDocker(config.dockerSocket) : undefined;
  const defaultPools = config.defaultPools.length
    ? config.defaultPools
    : [...DEFAULT_IPV4_POOLS.map(parseDefaultPool), parseDefaultPool(`${host.ula}:64`)];

  // Cluster mode (--etcd): the store, this host's member, cluster-wide IPAM.
  let coordinator: ClusterCoordinator | undefined;
  const cluster = config.etcd.endpoints.length ? await joinCluster(config, host.hostId, kernel, log) : undefined;
  const ipam = createIpam(
    kv,
    {
      defaultPools,
      hostRoutes: async () => (await kernel.listRoutes()).map((r) => r.prefix),
      ...(cluster ? { cluster: { pools: cluster.pools, overlayReserved: (k: string) => coordinator?.overlayReserved(k) ?? new Set<string>() } } : {}),
    },
    log.child({ svc: 'ipam' }),
  );
  const firewall = new NftFirewall(log.child({ svc: 'firewall' }), firewallNames(instance));
  const networks = new NetworkService(
    new NetworkRepository(kv),
    new BridgeDataPlane(kernel, log.child({ svc: 'bridge' }), { sysctl: new Sysctl(config.procSys) }),
    firewall,
    log.child({ svc: 'network' }),
  );
  if (cluster) {
    const propagator = docker
      ? new DockerPropagator(docker, cluster.agent, config.driverName, log.child({ svc: 'propagate' }))
      : undefined;
    coordinator = new ClusterCoordinator(cluster.agent, ipam, cluster.pools, kernel, propagator, log.child({ svc: 'cluster' }));
    coordinator.networks = networks;
    networks.setOverlayControl(coordinator);
  }
  const reconcileLog = log.child({ svc: 'reconcile' });
  let dockerErrorLogged = false;
  const reconciler = new Reconciler({
    onRepair: (kind, n) => metrics?.repairs.inc({ kind }, n),
    networks,
    ipam,
    kernel,
    firewall,
    docker: docker
      ? dockerViewSource(docker, (err) => {
          // Logged once per outage: Docker being down is normal during its restarts.
          if (!dockerErrorLogged) reconcileLog.info({ err: String(err) }, 'Docker API not reachable: Docker-dependent repairs wait');
          dockerErrorLogged = true;
        })
      : undefined,
    log: reconcileLog,
    // Overlay VXLAN entries, and shared pools' loans and reservations against etcd.
    ...(coordinator ? { extraRepairs: async () => ({ ...(await (coordinator as ClusterCoordinator).repairOverlays()), ...(await ipam.resyncShared()) }) } : {}),
    options: {
      ...DEFAULT_RECONCILE,
      intervalMs: config.reconcileIntervalS * 1000,
      graceMs: config.reconcileGraceS * 1000,
      confirmMs: Math.min(DEFAULT_RECONCILE.confirmMs, config.reconcileIntervalS * 1000),
    },
  });
  await ipam.load();
  await networks.load();

  const app = createPluginApp([activateRoute, ...networkRoutes(networks, config.scope), ...ipamRoutes(ipam)], log, metrics ? (e) => metrics.observeCall(e) : undefined);
  metrics?.attach({ networks, ipam, kernel, ...(cluster ? { agent: cluster.agent, claimConflicts: cluster.conflicts } : {}), containerNames: () => reconciler.containerNames });
  let server: http.Server;
  if (early) {
    early.ready(app);
    server = early.server;
  } else {
    server = await listenUnix(app, config.socket, config.socketMode);
  }
  const metricsServer = metrics && config.metrics ? await listenMetrics(metrics, config.metrics) : undefined;
  const admin = config.adminSocket
    ? await listenUnix(createAdminApp({
          version: VERSION,
          startedAt: new Date(started),
          stateDir: config.stateDir,
          owner: { instance, mark: ownerMark(instance), nftTable: firewallNames(instance).table, iptablesChain: firewallNames(instance).chain },
          networks,
          ipam,
          reconciler,
          ...(cluster && coordinator
            ? {
                overlayDrift: () => (coordinator as ClusterCoordinator).overlayDrift(),
                cluster: () => clusterStatus(cluster),
                peers: () => ({
                  cluster: true,
                  self: cluster.agent.hostId,
                  hosts: [...cluster.agent.hosts.values()].map((h) => ({ ...h, leaseAgeSeconds: Math.round((Date.now() - Date.parse(h.startedAt)) / 1000) })),
                  overlays: [...cluster.agent.overlays.values()].map((o) => ({ key: o.key, vni: o.vni, name: o.name, origin: o.origin, mtu: o.mtu, remoteEndpoints: cluster.agent.remote.get(o.key)?.size ?? 0 })),
                }),
              }
            : {}),
        }), config.adminSocket, 0o600)
    : undefined;
  const counts = networks.list();
  log.info(
    {
      version: VERSION,
      socket: config.socket,
      stateDir: config.stateDir,
      owner: ownerMark(instance),
      networks: counts.length,
      endpoints: counts.reduce((n, c) => n + c.endpoints.length, 0),
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
  const restoring = restoreDataPlane(networks, log)
    .catch((err) => log.error({ err: String(err) }, 'data plane restore failed'))
    .then(() => reconciler.start());

  return {
    async stop(): Promise<void> {
      // Finish the calls in flight (bounded), refuse new ones, keep the data plane as it is.
      for (const srv of [server, admin, metricsServer]) {
        const where = srv?.address();
        if (!srv) continue;
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => srv.closeAllConnections(), 10_000);
          force.unref();
          srv.close(() => {
            clearTimeout(force);
            // A Unix socket's file outlives the listener: remove it so nothing dials a dead socket.
            if (typeof where === 'string') fs.rmSync(where, { force: true });
            resolve();
          });
          srv.closeIdleConnections();
        });
      }
      await restoring;
      await reconciler.stop();
      await cluster?.agent.stop();
      kernel.close();
      await snapshots.stop();
      await kv.close();
    },
  };
}

/**
 * The state directory: created root-only (0700) when missing. An existing directory is never
 * chmodded (it may be shared, like /tmp): one others can write to is refused (they could replace
 * loom's store), one others can read is used with a warning.
 */
export function prepareStateDir(dir: string, log: Logger): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(dir);
  } catch {
    st = undefined;
  }
  if (!st) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    return;
  }
  if (!st.isDirectory()) throw new LoomError('invalid', `--state-dir ${dir} exists and is not a directory`);
  if (st.mode & 0o022) {
    throw new LoomError('invalid', `--state-dir ${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)}); loom keeps its store in a directory only root can write: choose another directory or chmod 700 it`);
  }
  if (st.uid !== process.getuid?.()) log.warn({ stateDir: dir, uid: st.uid }, 'the state directory belongs to another user');
  if (st.mode & 0o005) log.warn({ stateDir: dir, mode: (st.mode & 0o7777).toString(8) }, 'the state directory is readable by other users; loom creates it with mode 700');
}

/** A Docker API client created (and dockerode loaded) on first use. */
function lazyDocker(socketPath: string): () => Promise<Dockerode> {
  let client: Promise<Dockerode> | undefined;
  return () => (client ??= import('dockerode').then(({ default: D }) => new D({ socketPath, timeout: 30_000 })));
}

/** The metrics listener: a Unix socket (root only) or HOST:PORT; never the plugin socket. */
async function listenMetrics(metrics: Metrics, where: string): Promise<http.Server> {
  if (where.startsWith('/')) return listenUnix(metrics.app(), where, 0o600);
  const colon = where.lastIndexOf(':');
  const host = where.slice(0, colon).replace(/^\[|\]$/g, '');
  const server = http.createServer(metrics.app());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(where.slice(colon + 1)), host, () => resolve());
  });
  return server;
}

/**
 * Cluster membership: this host's VTEP (the advertise address, or the address of the
 * default route's interface) and its underlay MTU, the etcd store, the agent, the IPAM side.
 */
async function joinCluster(config: Config, hostId: string, kernel: NetlinkKernel, log: Logger): Promise<ClusterMember> {
  // Bad TLS settings stop loomd here, with the flag and file named, not at every call later.
  const credentials = loadEtcdTls(config.etcd);
  const addresses = await kernel.listAddresses();
  const links = await kernel.listLinks();
  let vtep = config.advertiseAddress;
  if (!vtep) {
    const def = (await kernel.listRoutes()).find((r) => r.prefix.family === 4 && r.prefix.len === 0);
    vtep = addresses.find((a) => a.family === 4 && a.index === def?.index)?.cidr.split('/')[0];
    if (!vtep) throw new LoomError('invalid', 'cluster mode needs this host\'s VXLAN address: pass --advertise-address (no IPv4 default route found)');
  }
  const holder = addresses.find((a) => a.cidr.split('/')[0] === vtep);
  if (!holder) throw new LoomError('invalid', `--advertise-address ${vtep} is not an address of this host`);
  const underlayMtu = links.find((l) => l.index === holder.index)?.mtu ?? 1500;
  const store = new LazyEtcdStore({ endpoints: config.etcd.endpoints, ...(credentials ? { credentials } : {}) }, log.child({ svc: 'etcd' }));
  const agent = new ClusterAgent(store, { hostId, vtep, underlayMtu, version: VERSION }, log.child({ svc: 'cluster' }), { leaseTtlS: config.leaseTtlS, peerGraceS: config.peerGraceS });
  log.info({ hostId, vtep, underlayMtu, etcd: config.etcd.endpoints, tls: credentials !== undefined }, 'cluster mode');
  const ipamLog = log.child({ svc: 'cluster-ipam' });
  const conflicts = createClaimConflicts(ipamLog);
  const pools = createClusterPools(agent.store, hostId, ipamLog, { writes: agent.writes, knownClaims: () => [...agent.claims.values()], conflicts, health: agent.health });
  return { agent, pools, conflicts };
}

interface ClusterMember {
  agent: ClusterAgent;
  pools: ClusterPools;
  conflicts: ClaimConflicts;
}

/** The cluster part of `loomctl status` and `doctor`: etcd's state as this host sees it. */
function clusterStatus(c: ClusterMember): ClusterStatus {
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

/** Re-creates bridges, gateway addresses and firewall rules of every stored network. */
async function restoreDataPlane(networks: NetworkService, log: Logger): Promise<void> {
  await networks.restorePorts();
  for (const { record } of networks.list()) {
    await networks.withNetworkLock(record.id, async () => {
      const steps = new StepRunner(`restore network ${record.id.slice(0, 12)}`, log);
      try {
        await networks.restoreNetwork(record, steps);
      } catch (err) {
        log.error({ networkId: record.id, err: asLoomError(err).message }, 'could not restore network');
      }
    });
  }
  await networks.syncFirewall();
  log.info({ networks: networks.list().length }, 'data plane restored');
}
