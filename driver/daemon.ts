/**
 * loomd's composition root (main.ts is the bootstrap that opens the socket first).
 * Wires config, store, kernel, firewall, IPAM and network services and the HTTP
 * edge; no module-level singletons elsewhere.
 * Start-up order: open the store and load state (fast), listen on the socket,
 * then repair the data plane in the background; never wait for Docker.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Config, DEFAULT_IPV4_POOLS } from './config';
import type { EarlySocket } from './http/early-socket';
import { LoomError, asLoomError } from './errors';
import { ClusterAgent } from './cluster/agent';
import { ClusterCoordinator } from './cluster/coordinator';
import { LazyEtcdStore } from './cluster/lazy-store';
import { DockerPropagator } from './cluster/propagator';
import { ClusterPools } from '../ipam-driver/cluster-pools';
import { NftFirewall } from './firewall/nft-firewall';
import { createPluginApp, listenUnix } from './http/server';
import { NetlinkKernel } from './kernel/netlink-kernel';
import { setProcSysRoot } from './kernel/sysctl';
import { BridgeDataPlane } from './dataplane/bridge';
import { activateRoute, networkRoutes } from './network/handlers';
import { NetworkService } from './network/network-service';
import type { Logger } from './observability/logger';
import { createAdminApp } from './observability/admin';
import type { Metrics } from './observability/metrics';
import { ensureHostMeta } from './store/host-meta';
import { LevelKv } from './store/level-kv';
import { NetworkRepository } from './store/network-repo';
import { ensureSchema } from './store/schema';
import { ipamRoutes } from '../ipam-driver/handlers';
import { IpamService } from '../ipam-driver/ipam-service';
import { IpamRepository } from '../ipam-driver/ipam-store';
import { parseDefaultPool } from '../ipam-driver/core/pool-picker';
import { StepRunner } from './dataplane/steps';
import type Dockerode from 'dockerode';
import { dockerViewSource } from './reconcile/docker-view';
import { DEFAULT_RECONCILE, Reconciler } from './reconcile/reconciler';

import { VERSION } from './version';

export interface Daemon {
  stop(): Promise<void>;
}

/** Starts loomd; `early` is the plugin socket the bootstrap (main.ts) already opened. */
export async function startDaemon(config: Config, log: Logger, early?: EarlySocket): Promise<Daemon> {
  const started = Date.now();
  setProcSysRoot(config.procSys);
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(config.stateDir, 0o700);
  const kv = await LevelKv.open(path.join(config.stateDir, 'db'));
  try {
    await ensureSchema(kv);
  } catch (err) {
    await kv.close();
    throw err;
  }
  const host = await ensureHostMeta(kv);
  const kernel = new NetlinkKernel();
  // Heavy modules load only when used: prom-client with --metrics, dockerode on the first
  // reconcile pass, etcd3 on the first cluster call; the socket answers before any of them.
  const metrics: Metrics | undefined = config.metrics ? new (await import('./observability/metrics')).Metrics(log.child({ svc: 'metrics' })) : undefined;
  kernel.onError = (errno) => metrics?.kernelErrors.inc({ errno });
  const docker = config.dockerSocket ? lazyDocker(config.dockerSocket) : undefined;
  const defaultPools = config.defaultPools.length
    ? config.defaultPools
    : [...DEFAULT_IPV4_POOLS.map(parseDefaultPool), parseDefaultPool(`${host.ula}:64`)];

  // Cluster mode (--etcd): the store, this host's member, cluster-wide IPAM.
  let coordinator: ClusterCoordinator | undefined;
  const cluster = config.etcd.endpoints.length ? await joinCluster(config, host.hostId, kernel, log) : undefined;
  const ipam = new IpamService(
    new IpamRepository(kv),
    {
      defaultPools,
      hostRoutes: async () => (await kernel.listRoutes()).map((r) => r.prefix),
      ...(cluster ? { cluster: { pools: cluster.pools, overlayReserved: (k: string) => coordinator?.overlayReserved(k) ?? new Set<string>() } } : {}),
    },
    log.child({ svc: 'ipam' }),
  );
  const firewall = new NftFirewall(log.child({ svc: 'firewall' }));
  const networks = new NetworkService(
    new NetworkRepository(kv),
    new BridgeDataPlane(kernel, log.child({ svc: 'bridge' })),
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
  metrics?.attach({ networks, ipam, kernel, ...(cluster ? { agent: cluster.agent } : {}), containerNames: () => reconciler.containerNames });
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
          networks,
          ipam,
          reconciler,
          ...(cluster && coordinator
            ? {
                overlayDrift: () => (coordinator as ClusterCoordinator).overlayDrift(),
                cluster: () => ({ hostId: cluster.agent.hostId, vtep: cluster.agent.me.vtep, healthy: cluster.agent.store.healthy(), backlog: cluster.agent.backlog, hosts: cluster.agent.hosts.size }),
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
      await kv.close();
    },
  };
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
async function joinCluster(config: Config, hostId: string, kernel: NetlinkKernel, log: Logger): Promise<{ agent: ClusterAgent; pools: ClusterPools }> {
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
  const store = new LazyEtcdStore(config.etcd, log.child({ svc: 'etcd' }));
  const agent = new ClusterAgent(store, { hostId, vtep, underlayMtu, version: VERSION }, log.child({ svc: 'cluster' }), config.leaseTtlS);
  log.info({ hostId, vtep, underlayMtu, etcd: config.etcd.endpoints }, 'cluster mode');
  return { agent, pools: new ClusterPools(store, hostId, log.child({ svc: 'cluster-ipam' })) };
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
