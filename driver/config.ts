/**
 * loomd configuration: command-line flags, each with an environment
 * equivalent (flags win). Parsing is pure so it can be unit-tested.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { invalid } from '../lib/errors';
import { LOG_LEVELS, LogLevel } from '../lib/levels';
import { DefaultPool, parseDefaultPool } from '../ipam-driver/index';
import { parseIp } from '../lib/prefix';

export interface Config {
  socket: string;
  socketMode: number;
  /** Admin API socket for loomctl; undefined when disabled ("off"). */
  adminSocket: string | undefined;
  stateDir: string;
  logLevel: LogLevel;
  /** Docker API socket the reconciler reads Docker's view from; undefined when disabled. */
  dockerSocket: string | undefined;
  /** Seconds between reconcile passes. */
  reconcileIntervalS: number;
  /** Seconds an object must exist before the reconciler may call it an orphan. */
  reconcileGraceS: number;
  /** Cluster mode: etcd endpoints (empty: single host, no etcd needed). */
  etcd: { endpoints: string[]; ca?: string; cert?: string; key?: string };
  /** This host's VXLAN endpoint address; undefined: the address of the default route's interface. */
  advertiseAddress: string | undefined;
  /** Seconds a host's lease lives without keep-alive (its endpoints vanish from other hosts after it). */
  leaseTtlS: number;
  /** Seconds other hosts keep the endpoints of a host whose lease ended (it may only be cut off from etcd). */
  peerGraceS: number;
  /** The name Docker knows this driver by (for networks loom creates through the Docker API). */
  driverName: string;
  /** Scope answered in NetworkDriver.GetCapabilities: "global" for Swarm (managed plugin only). */
  scope: 'local' | 'global';
  /** Where kernel parameters are written (the managed plugin's /proc/sys is read-only; see plugin-config/config.json). */
  procSys: string;
  /**
   * Where this process sees Docker's netns directory (a container's SandboxKey is
   * `<Docker's exec root>/netns/<id>` as dockerd sees it); undefined: Docker's path is used
   * as is (legacy plugin). The managed plugin mounts Docker's exec root and sets this.
   */
  netnsDir: string | undefined;
  /** Prometheus metrics listener: "host:port" or a Unix socket path; undefined: off. */
  metrics: string | undefined;
  /** Explicit default pools; when empty, Docker-like IPv4 pools and a per-host ULA /48 are used. */
  defaultPools: DefaultPool[];
  /** Accepted but risky settings, logged as warnings at start-up. */
  warnings: string[];
}

export const DEFAULTS = {
  socket: '/run/docker/plugins/loom.sock',
  stateDir: '/var/lib/loom',
  logLevel: 'info' as LogLevel,
  socketMode: 0o600,
  adminSocket: '/run/loom/admin.sock',
  dockerHost: 'unix:///var/run/docker.sock',
  reconcileIntervalS: 30,
  reconcileGraceS: 10,
  leaseTtlS: 10,
  peerGraceS: 900,
  scope: 'local' as const,
  procSys: '/proc/sys',
};

/** Docker's own defaults for local networks: /16s of 172.16.0.0/12, then /20s of 192.168.0.0/16. */
export const DEFAULT_IPV4_POOLS = ['172.16.0.0/12:16', '192.168.0.0/16:20'];

export const USAGE = `Usage: loomd [options]

Docker network + IPAM plugin (bridge networks; state in LevelDB).

  --socket PATH         plugin socket; its file name is the driver name   [LOOM_SOCKET]
                        (default ${DEFAULTS.socket})
  --socket-mode MODE    octal permissions of the socket (default 600)     [LOOM_SOCKET_MODE]
  --admin-socket PATH   admin API for loomctl, or "off" (default ${DEFAULTS.adminSocket}) [LOOM_ADMIN_SOCKET]
  --docker-host URL     Docker API for the reconciler (unix:// only), or "off"   [DOCKER_HOST]
                        (default ${DEFAULTS.dockerHost}); loom never calls it inside a plugin call
  --reconcile-interval S  seconds between reconcile passes (default ${DEFAULTS.reconcileIntervalS}) [LOOM_RECONCILE_INTERVAL]
  --reconcile-grace S   seconds before a new object may be called an orphan (default ${DEFAULTS.reconcileGraceS}) [LOOM_RECONCILE_GRACE]
  --etcd URLS           etcd endpoints (comma-separated): join a loom cluster [LOOM_ETCD_ENDPOINTS]
  --etcd-ca/--etcd-cert/--etcd-key FILE   TLS for etcd  [LOOM_ETCD_CA, LOOM_ETCD_CERT, LOOM_ETCD_KEY]
  --advertise-address IP  this host's VXLAN endpoint (default: address of the default route's interface) [LOOM_ADVERTISE_ADDRESS]
  --lease-ttl S         host lease in seconds (default ${DEFAULTS.leaseTtlS})  [LOOM_LEASE_TTL]
  --peer-grace S        seconds other hosts keep the endpoints of a host whose lease ended
                        (partitioned from etcd, or gone) (default ${DEFAULTS.peerGraceS})  [LOOM_PEER_GRACE]
  --driver-name NAME    driver name Docker uses (default: the socket's file name) [LOOM_DRIVER_NAME]
  --scope local|global  driver scope Docker is told (default local; global for Swarm) [LOOM_SCOPE]
  --proc-sys DIR        where kernel parameters are written (default ${DEFAULTS.procSys})  [LOOM_PROC_SYS]
  --netns-dir DIR       where Docker's netns directory is visible to loomd, when not at the path  [LOOM_NETNS_DIR]
                        Docker sends (managed plugin: its mount of Docker's exec root); default: Docker's path
  --metrics ADDR        Prometheus /metrics on HOST:PORT or a Unix socket path (default off) [LOOM_METRICS]
  --state-dir DIR       LevelDB state directory (default ${DEFAULTS.stateDir}) [LOOM_STATE_DIR]
  --log-level LEVEL     ${LOG_LEVELS.join('|')} (default info)  [LOOM_LOG_LEVEL]
  --default-pool P      BASE/LEN:SIZE pool for automatic subnets, repeatable [LOOM_DEFAULT_POOLS, comma-separated]
                        (default ${DEFAULT_IPV4_POOLS.join(', ')} and a random ULA /48 split into /64s)
  -h, --help            this text
An empty LOOM_* (or DOCKER_HOST) variable counts as unset.
  --version             print the version
`;

export type ParsedArgs = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

export function parseConfig(argv: string[], rawEnv: NodeJS.ProcessEnv): ParsedArgs {
  // An empty LOOM_* variable counts as unset (a managed plugin's `docker plugin set X=` clears it that way).
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([k, v]) => v !== '' || !(k.startsWith('LOOM_') || k === 'DOCKER_HOST')));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: 'string' },
        'socket-mode': { type: 'string' },
        'admin-socket': { type: 'string' },
        'docker-host': { type: 'string' },
        'reconcile-interval': { type: 'string' },
        'reconcile-grace': { type: 'string' },
        etcd: { type: 'string' },
        'etcd-ca': { type: 'string' },
        'etcd-cert': { type: 'string' },
        'etcd-key': { type: 'string' },
        'advertise-address': { type: 'string' },
        'lease-ttl': { type: 'string' },
        'peer-grace': { type: 'string' },
        'driver-name': { type: 'string' },
        metrics: { type: 'string' },
        scope: { type: 'string' },
        'proc-sys': { type: 'string' },
        'netns-dir': { type: 'string' },
        'state-dir': { type: 'string' },
        'log-level': { type: 'string' },
        'default-pool': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw invalid((err as Error).message);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const socket = values.socket ?? env.LOOM_SOCKET ?? DEFAULTS.socket;
  if (!socket.startsWith('/') || !socket.endsWith('.sock')) throw invalid(`--socket must be an absolute path ending in .sock, got ${socket}`);
  const modeText = values['socket-mode'] ?? env.LOOM_SOCKET_MODE;
  let socketMode = DEFAULTS.socketMode;
  if (modeText !== undefined) {
    if (!/^0?[0-7]{3}$/.test(modeText)) throw invalid(`--socket-mode must be octal like 600, got ${modeText}`);
    socketMode = parseInt(modeText, 8);
  }
  const logLevel = (values['log-level'] ?? env.LOOM_LOG_LEVEL ?? DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`);
  const poolTexts = values['default-pool'] ?? (env.LOOM_DEFAULT_POOLS ? env.LOOM_DEFAULT_POOLS.split(',').filter((s) => s.trim()) : []);
  const stateDir = values['state-dir'] ?? env.LOOM_STATE_DIR ?? DEFAULTS.stateDir;
  if (!stateDir.startsWith('/')) throw invalid(`--state-dir must be an absolute path, got ${JSON.stringify(stateDir)}`);
  const admin = values['admin-socket'] ?? env.LOOM_ADMIN_SOCKET ?? DEFAULTS.adminSocket;
  if (admin !== 'off' && !admin.startsWith('/')) throw invalid(`--admin-socket must be an absolute path or "off", got ${admin}`);
  const dockerHost = values['docker-host'] ?? env.DOCKER_HOST ?? DEFAULTS.dockerHost;
  if (dockerHost !== 'off' && !/^unix:\/\/\/.+/.test(dockerHost)) throw invalid(`--docker-host must be unix:///path or "off", got ${dockerHost}`);
  const intervalText = values['reconcile-interval'] ?? env.LOOM_RECONCILE_INTERVAL ?? String(DEFAULTS.reconcileIntervalS);
  const reconcileIntervalS = Number(intervalText);
  if (!/^\d+(\.\d+)?$/.test(intervalText) || reconcileIntervalS < 0.1 || reconcileIntervalS > 86_400) {
    throw invalid(`--reconcile-interval must be a number of seconds between 0.1 and 86400, got ${intervalText}`);
  }
  const graceText = values['reconcile-grace'] ?? env.LOOM_RECONCILE_GRACE ?? String(DEFAULTS.reconcileGraceS);
  const reconcileGraceS = Number(graceText);
  if (!/^\d+(\.\d+)?$/.test(graceText) || reconcileGraceS > 86_400) throw invalid(`--reconcile-grace must be a number of seconds, got ${graceText}`);
  const etcdText = values.etcd ?? env.LOOM_ETCD_ENDPOINTS ?? '';
  const endpoints = etcdText.split(',').map((e) => e.trim()).filter(Boolean);
  for (const e of endpoints) if (!/^https?:\/\/[^/\s]+$/.test(e)) throw invalid(`--etcd endpoints must be http(s)://host:port, got ${e}`);
  const tls = (flag: string, envName: string): string | undefined => {
    const v = (values as Record<string, string | undefined>)[flag] ?? env[envName];
    if (v !== undefined && !v.startsWith('/')) throw invalid(`--${flag} must be an absolute path, got ${v}`);
    return v || undefined;
  };
  const advertise = values['advertise-address'] ?? env.LOOM_ADVERTISE_ADDRESS;
  if (advertise !== undefined) parseIp(advertise, 'advertise address');
  const ttlText = values['lease-ttl'] ?? env.LOOM_LEASE_TTL ?? String(DEFAULTS.leaseTtlS);
  if (!/^\d{1,4}$/.test(ttlText) || Number(ttlText) < 2) throw invalid(`--lease-ttl must be whole seconds >= 2, got ${ttlText}`);
  const peerGraceText = values['peer-grace'] ?? env.LOOM_PEER_GRACE ?? String(DEFAULTS.peerGraceS);
  if (!/^\d{1,6}$/.test(peerGraceText)) throw invalid(`--peer-grace must be whole seconds, got ${peerGraceText}`);
  const driverName = values['driver-name'] ?? env.LOOM_DRIVER_NAME ?? path.basename(socket, '.sock');
  const scope = values.scope ?? env.LOOM_SCOPE ?? DEFAULTS.scope;
  if (scope !== 'local' && scope !== 'global') throw invalid(`--scope must be local or global, got ${scope}`);
  const procSys = values['proc-sys'] ?? env.LOOM_PROC_SYS ?? DEFAULTS.procSys;
  if (!procSys.startsWith('/')) throw invalid(`--proc-sys must be an absolute path, got ${JSON.stringify(procSys)}`);
  const netnsDir = values['netns-dir'] ?? env.LOOM_NETNS_DIR;
  if (netnsDir !== undefined && (!netnsDir.startsWith('/') || path.posix.normalize(netnsDir) !== netnsDir || !netnsDir.endsWith('/netns'))) {
    throw invalid(`--netns-dir must be a normalised absolute path ending in /netns (Docker's netns directory), got ${JSON.stringify(netnsDir)}`);
  }
  const metrics = values.metrics ?? env.LOOM_METRICS;
  if (metrics !== undefined && !metrics.startsWith('/') && !/^[0-9a-fA-F.:[\]]+:\d{1,5}$/.test(metrics)) {
    throw invalid(`--metrics must be HOST:PORT (e.g. 127.0.0.1:9323) or an absolute socket path, got ${metrics}`);
  }
  const warnings: string[] = [];
  if (socketMode & 0o077) {
    warnings.push(`--socket-mode ${modeText}: users other than root can call the plugin API (create and delete networks and endpoints); 600 keeps it root-only`);
  }
  if (metrics !== undefined && !metrics.startsWith('/') && !isLoopbackListener(metrics)) {
    warnings.push(`--metrics ${metrics}: metrics are served without authentication to every address that can reach this port (they name networks, containers and traffic); prefer 127.0.0.1:PORT or a Unix socket`);
  }
  return {
    kind: 'run',
    config: {
      warnings,
      metrics,
      etcd: { endpoints, ca: tls('etcd-ca', 'LOOM_ETCD_CA'), cert: tls('etcd-cert', 'LOOM_ETCD_CERT'), key: tls('etcd-key', 'LOOM_ETCD_KEY') },
      advertiseAddress: advertise,
      leaseTtlS: Number(ttlText),
      peerGraceS: Number(peerGraceText),
      driverName,
      scope,
      procSys,
      netnsDir,
      reconcileGraceS,
      dockerSocket: dockerHost === 'off' ? undefined : dockerHost.slice('unix://'.length),
      reconcileIntervalS,
      socket,
      socketMode,
      adminSocket: admin === 'off' ? undefined : admin,
      stateDir,
      logLevel,
      defaultPools: poolTexts.map(parseDefaultPool),
    },
  };
}

/** True for HOST:PORT listeners only reachable from this host (127.0.0.0/8, ::1, localhost). */
export function isLoopbackListener(where: string): boolean {
  const host = where.slice(0, where.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return /^127\./.test(host) || host === '::1' || host === 'localhost';
}
