#!/usr/bin/env node
/**
 * loomctl: see and repair what loom did. Talks to loomd's root-only admin socket
 * (LevelDB allows one process, so it never opens the store itself). Tables for
 * people, --json for scripts. `loomctl store …` (store-commands.ts) is the exception: offline
 * recovery of a damaged store, run while loomd is stopped. Exit codes: 0 fine, 1 problems found (doctor) or
 * repairs that failed (gc), 2 usage, 3 loomd unreachable.
 */
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import { stripLength } from '../../lib/prefix';
import { request, Unreachable } from './admin-client';

const USAGE = `Usage: loomctl [--admin-socket PATH] [--json] COMMAND

Commands:
  status      version, uptime, state, cluster membership, reconciler
  networks    networks: bridge, mode, subnets, endpoints
  endpoints   endpoints: network, container, addresses, MAC, interfaces
  ipam        pools: utilisation and free addresses
  peers       the cluster's hosts and overlays (cluster mode)
  names [NETWORK]  the DNS names loom serves on overlays: address and host
  doctor      cross-checks Docker, loom's store and the kernel (and etcd): every
              disagreement with the command that repairs it; exit 1 when any
  gc          runs the reconciler now and repairs what doctor reports
  store ...   offline recovery of a damaged state store (loomd stopped): loomctl store --help
  policy ...  network policy: apply -f FILE | ls | show NAME | rm NAME | explain CONTAINER
              (loomctl policy --help)

Options:
  --admin-socket PATH   loomd's admin socket [LOOM_ADMIN_SOCKET] (default /run/loom/admin.sock)
  --docker-host URL     Docker API for container names [DOCKER_HOST] (default unix:///var/run/docker.sock)
  --json                machine-readable output
`;

/** Container names by endpoint id, asked of Docker (empty when Docker does not answer). */
async function containerNames(dockerHost: string | undefined): Promise<Map<string, string>> {
  const socketPath = (dockerHost ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
  const names = new Map<string, string>();
  try {
    const docker = new Dockerode({ socketPath, timeout: 10_000 });
    for (const c of await docker.listContainers()) {
      for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) if (n.EndpointID) names.set(n.EndpointID, (c.Names[0] ?? '').replace(/^\//, ''));
    }
  } catch {
    // loomd's own (older) knowledge is used instead
  }
  return names;
}

/** The cluster lines of `loomctl status`. */
function clusterLines(c: Any): string[] {
  const etcd = c.healthy
    ? `reachable${c.etcd?.outages ? ` (lost ${c.etcd.outages} time(s) since start)` : ''}`
    : `UNREACHABLE since ${c.etcd?.since ?? '?'}${c.etcd?.lastError ? `: ${c.etcd.lastError}` : ''}`;
  return [
    `cluster:    host ${c.hostId} vtep ${c.vtep}, ${c.hosts} hosts, ${c.backlog} writes waiting`,
    `etcd:       ${etcd}${c.reconnecting ? ', reconnecting' : ''}`,
    ...((c.claimConflicts ?? []) as Any[]).map((k) => `CONFLICT:   subnet ${k.subnet} is claimed by ${k.holder} (loomctl doctor)`),
  ];
}

/** The log line of `loomctl status`: what the log writer lost (an older loomd reports nothing). */
function logLine(l: Any | undefined): string {
  if (!l) return '-';
  const lost = `${l.droppedLines} lines dropped (stdout not read)`;
  return l.writeErrors ? `${lost}, ${l.writeErrors} failed writes (last: ${l.lastWriteError ?? '?'})` : lost;
}

/** Left-aligned columns. */
function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const short = (id: string | undefined): string => (id ?? '').slice(0, 12);
const ago = (iso: string | undefined): string => {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};

/** The repair command for a problem; `loomctl gc` unless named here. */
const REPAIR: Record<string, string> = {
  'replumb-endpoint': 'loomctl gc   (or: docker restart <container>)',
};

function describe(a: Any): string {
  const target = a.networkId ? `network ${short(a.networkId)}${a.endpointId ? ` endpoint ${short(a.endpointId)}${a.container ? ` (${a.container})` : ''}` : ''}` : a.poolId ? `pool ${a.poolId}${a.address ? ` address ${a.address}` : ''}` : a.name ? `interface ${a.name}` : 'firewall';
  return `${target}: ${a.reason}`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void): Promise<number> {
  // Offline commands: they open the store themselves instead of asking loomd.
  if (argv[0] === 'store') return (await import('./store-commands')).storeMain(argv.slice(1), env, out);
  // Network policy: asks loomd, or writes the store itself while loomd is stopped.
  if (argv[0] === 'policy') return (await import('./policy-commands')).policyMain(argv.slice(1), env, out);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'admin-socket': { type: 'string' }, 'docker-host': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    out(`loomctl: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const cmd = parsed.positionals[0];
  if (parsed.values.help || !cmd) {
    out(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const sock = parsed.values['admin-socket'] ?? env.LOOM_ADMIN_SOCKET ?? '/run/loom/admin.sock';
  const json = parsed.values.json === true;
  const get = (p: string): Promise<Any> => request(sock, 'GET', p) as Promise<Any>;
  const emit = (data: unknown, text: () => string): void => out(json ? JSON.stringify(data, null, 2) + '\n' : text());
  try {
    switch (cmd) {
      case 'status': {
        const s = await get('/v1/status');
        emit(s, () =>
          [
            `loomd ${s.version} (pid ${s.pid}), up ${ago(s.startedAt)}`,
            `state:      ${s.stateDir}`,
            `owner:      ${s.owner?.mark ?? '-'} (links: ip -d link | grep 'alias ${s.owner?.mark ?? ''}'; nft table inet ${s.owner?.nftTable ?? '-'}; iptables chain ${s.owner?.iptablesChain ?? '-'})`,
            `networks:   ${s.networks}   endpoints: ${s.endpoints}   pools: ${s.pools}`,
            `reconciler: ${s.reconciler?.passes ?? 0} passes, last ${ago(s.reconciler?.lastPass)} ago, repairs ${JSON.stringify(s.reconciler?.repairs ?? {})}`,
            `logs:       ${logLine(s.logs)}`,
            ...(s.cluster ? clusterLines(s.cluster) : ['cluster:    none (single host)']),
          ].join('\n') + '\n',
        );
        return 0;
      }
      case 'networks': {
        const nets = (await get('/v1/networks')) as unknown as Any[];
        emit(nets, () =>
          table(
            ['NETWORK', 'BRIDGE', 'MODE', 'SUBNETS', 'GATEWAYS', 'MTU', 'ENDPOINTS', 'FLAGS'],
            nets.map((n) => {
              const ipam: Any[] = [...n.ipv4, ...(n.enableIpv6 ? n.ipv6 : [])];
              return [
                short(n.id),
                n.bridge,
                n.overlay ? `overlay ${n.overlay.key} vni ${n.overlay.vni}` : 'bridge',
                ipam.map((d) => d.pool).join(','),
                ipam.map((d) => stripLength(d.gateway ?? '-')).join(','),
                String(n.mtu),
                String(n.endpoints.length),
                [n.internal && 'internal', n.gatewayService === 'docker' && 'docker-gateway', !n.icc && 'no-icc', !n.masquerade && 'no-nat'].filter(Boolean).join(',') || '-',
              ];
            }),
          ),
        );
        return 0;
      }
      case 'endpoints': {
        const nets = (await get('/v1/networks')) as unknown as Any[];
        const names = await containerNames(parsed.values['docker-host'] ?? env.DOCKER_HOST);
        const eps: Any[] = nets.flatMap((n) => (n.endpoints as Any[]).map((e) => ({ ...e, network: n.id, container: names.get(e.id) ?? e.container })));
        emit(eps, () =>
          table(
            ['ENDPOINT', 'NETWORK', 'CONTAINER', 'ADDRESS', 'ADDRESS6', 'MAC', 'HOST-IF', 'PORTS'],
            eps.map((e) => [
              short(e.id),
              short(e.network),
              e.container || '-',
              e.address ?? '-',
              e.addressV6 ?? '-',
              e.mac,
              e.hostIf,
              (e.ports ?? []).map((p: Any) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`).join(',') || '-',
            ]),
          ),
        );
        return 0;
      }
      case 'ipam': {
        const pools = (await get('/v1/ipam')) as unknown as Any[];
        emit(pools, () =>
          table(
            ['POOL', 'SPACE', 'RANGE', 'USED', 'CAPACITY', 'UTIL', 'FREE', 'SHARED'],
            pools.map((p) => {
              const used = BigInt(p.used);
              const cap = BigInt(p.capacity);
              const pct = cap > 0n ? Number((used * 10000n) / cap) / 100 : 0;
              return [p.pool, p.addressSpace, p.subPool ?? '-', String(used), String(cap), `${pct}%`, String(cap - used), p.shared ?? '-'];
            }),
          ),
        );
        return 0;
      }
      case 'peers': {
        const p = await get('/v1/peers');
        emit(p, () =>
          p.cluster
            ? table(['HOST', 'VTEP', 'UNDERLAY-MTU', 'LEASE-AGE', 'VERSION'], (p.hosts as Any[]).map((h) => [h.hostId + (h.hostId === p.self ? ' (this)' : ''), h.vtep, String(h.underlayMtu), `${h.leaseAgeSeconds}s`, h.version])) +
              '\n' +
              table(['OVERLAY', 'VNI', 'NAME', 'ORIGIN', 'MTU', 'REMOTE-ENDPOINTS'], (p.overlays as Any[]).map((o) => [o.key, String(o.vni), o.name ?? '-', o.origin, String(o.mtu), String(o.remoteEndpoints)]))
            : 'not in a cluster (loomd runs without --etcd)\n',
        );
        return 0;
      }
      case 'names': {
        const net = parsed.positionals[1];
        const n = (await get(`/v1/names${net ? `?network=${encodeURIComponent(net)}` : ''}`)) as Any[];
        emit(n, () => table(['NAME', 'NETWORK', 'ADDRESSES', 'HOSTS', 'ANSWERED-BY'], n.map((r) => [r.name, r.network ?? r.overlay, [...r.v4, ...r.v6].join(',') || '-', (r.hosts as string[]).join(','), r.local ? 'docker (local)' : 'loom'])));
        return 0;
      }
      case 'doctor': {
        const d = await get('/v1/doctor');
        const problems: Array<{ problem: string; repair: string }> = [
          ...(d.actions as Any[]).map((a) => ({ problem: `${a.kind}: ${describe(a)}`, repair: REPAIR[a.kind] ?? 'loomctl gc' })),
          ...((d.policyDrift ?? []) as string[]).map((p) => ({ problem: `network policy: ${p}`, repair: 'loomctl gc' })),
          ...(d.overlays as Any[]).map((o) => ({ problem: `overlay ${o.overlay}: ${o.missing} VXLAN entries missing, ${o.stale} stale on ${o.vxlan}`, repair: 'loomctl gc' })),
          ...(d.unknownToLoom as Any[]).map((u) => ({
            problem: `endpoint ${short(u.endpointId)}${u.container ? ` (${u.container})` : ''} on network ${short(u.networkId)} is known to Docker but not to loom`,
            repair: `docker network disconnect -f ${short(u.networkId)} ${u.container || '<container>'} && docker network connect ${short(u.networkId)} ${u.container || '<container>'}`,
          })),
        ];
        if (d.cluster && !d.cluster.healthy) {
          problems.push({
            problem: `the cluster store (etcd) is unreachable since ${d.cluster.etcd?.since ?? '?'}${d.cluster.etcd?.lastError ? ` (${d.cluster.etcd.lastError})` : ''}; ${d.cluster.backlog} writes waiting`,
            repair: 'check etcd (etcdctl endpoint health) and the path to it; loomd reconnects by itself, local networks are not affected',
          });
        }
        for (const k of (d.cluster?.claimConflicts ?? []) as Any[]) {
          problems.push({
            problem: `subnet ${k.subnet} is used on this host but claimed in etcd by ${k.holder} (taken while etcd was unreachable)`,
            repair: `remove the network using ${k.subnet} on this host or on the other side (docker network rm NAME)`,
          });
        }
        emit({ ...d, problems }, () => {
          const head = `checked Docker (${d.dockerView ? 'reachable' : 'NOT reachable: Docker-dependent checks skipped'}), loom's store, the kernel${d.cluster ? ' and etcd' : ''}\n`;
          if (!problems.length) return `${head}no problems found\n`;
          return `${head}${problems.length} problem(s):\n` + problems.map((p, i) => `  ${i + 1}. ${p.problem}\n     repair: ${p.repair}`).join('\n') + '\n';
        });
        return problems.length ? 1 : 0;
      }
      case 'gc': {
        const r = (await request(sock, 'POST', '/v1/reconcile?force=1')) as Any;
        emit(r, () => {
          const lines = [
            ...(r.applied as Any[]).map((a) => `  repaired ${a.kind}: ${describe(a)}`),
            ...Object.entries((r.extra ?? {}) as Record<string, number>).map(([k, n]) => `  repaired ${k}: ${n} entries`),
          ];
          const errs = (r.errors as string[]).map((e) => `  FAILED ${e}`);
          return `${lines.length} repair(s), ${errs.length} failure(s) in ${r.durationMs} ms\n${[...lines, ...errs].join('\n')}${lines.length + errs.length ? '\n' : ''}`;
        });
        return (r.errors as string[]).length ? 1 : 0;
      }
      default:
        out(`loomctl: unknown command ${cmd}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    out(`loomctl: ${(err as Error).message}\n`);
    return err instanceof Unreachable ? 3 : 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2), process.env, (s) => process.stdout.write(s)).then((code) => process.exit(code));
}
