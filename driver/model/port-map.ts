/**
 * Published ports (`docker run -p`): Docker's port map, validated and turned into
 * the bindings loom programs as DNAT rules. No I/O of its own: whether a host port
 * is free is asked of a `tryReserve` callback (the PortReserver in production).
 */
import { invalid } from '../../lib/errors';
import { parseIp } from '../../lib/prefix';

export type Proto = 'tcp' | 'udp' | 'sctp';

/** One entry of com.docker.network.portmap, as Docker sends it. */
export interface DockerPortBinding {
  Proto: number;
  IP?: string;
  Port: number;
  HostIP?: string;
  HostPort?: number;
  HostPortEnd?: number;
}

/** A host port forwarded to a container port: what the firewall renders. */
export interface PublishedPort {
  proto: Proto;
  family: 4 | 6;
  /** "0.0.0.0" / "::" for every local address, else one address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export const PORTMAP_KEY = 'com.docker.network.portmap';
/** Docker's default range for ports it chooses (`-P`, HostPort 0). */
export const EPHEMERAL = { start: 49153, end: 65535 };
const PROTOS: Record<number, Proto> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/** Validates Docker's portmap option (an array; absent or null means no published ports). */
export function parsePortMap(value: unknown): DockerPortBinding[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`${PORTMAP_KEY} must be an array`);
  if (value.length > 4096) throw invalid(`${PORTMAP_KEY}: too many bindings`);
  return value.map((raw, i) => {
    const b = raw as DockerPortBinding;
    if (!b || typeof b !== 'object') throw invalid(`${PORTMAP_KEY}[${i}] must be an object`);
    if (typeof b.Proto !== 'number' || !PROTOS[b.Proto]) throw invalid(`${PORTMAP_KEY}[${i}]: unknown protocol ${JSON.stringify(b.Proto)}`);
    if (!isPort(b.Port)) throw invalid(`${PORTMAP_KEY}[${i}]: invalid container port ${JSON.stringify(b.Port)}`);
    const hp = b.HostPort ?? 0;
    const hpe = b.HostPortEnd ?? 0;
    if (hp !== 0 && !isPort(hp)) throw invalid(`${PORTMAP_KEY}[${i}]: invalid host port ${JSON.stringify(hp)}`);
    if (hpe !== 0 && (!isPort(hpe) || hpe < hp)) throw invalid(`${PORTMAP_KEY}[${i}]: invalid host port range ${hp}-${hpe}`);
    if (b.HostIP !== undefined && typeof b.HostIP !== 'string') throw invalid(`${PORTMAP_KEY}[${i}]: HostIP must be a string`);
    if (b.HostIP) parseIp(b.HostIP, 'host IP');
    return b;
  });
}

export interface ContainerAddresses {
  v4?: string;
  v6?: string;
}

/**
 * Expands Docker's bindings into published ports: an empty HostIP means the
 * network's default binding address for IPv4 (and every IPv6 address when the
 * container has one); a range or 0 means the first port `tryReserve` accepts.
 */
export async function choosePorts(
  bindings: DockerPortBinding[],
  container: ContainerAddresses,
  defaultHostIp: string,
  tryReserve: (proto: Proto, hostIp: string, port: number) => Promise<boolean>,
): Promise<PublishedPort[]> {
  const out: PublishedPort[] = [];
  for (const b of bindings) {
    const proto = PROTOS[b.Proto] as Proto;
    const targets: Array<{ family: 4 | 6; hostIp: string; containerIp: string }> = [];
    if (b.HostIP) {
      const family = parseIp(b.HostIP).family;
      const containerIp = family === 4 ? container.v4 : container.v6;
      if (!containerIp) throw invalid(`cannot publish on ${b.HostIP}: the container has no IPv${family} address on this network`);
      if (family === 6 && b.HostIP === '::1') throw invalid('publishing on the IPv6 loopback address ::1 is not supported; use 127.0.0.1 or ::');
      targets.push({ family, hostIp: b.HostIP, containerIp });
    } else {
      const family = parseIp(defaultHostIp).family;
      const containerIp = family === 4 ? container.v4 : container.v6;
      if (containerIp) targets.push({ family, hostIp: defaultHostIp, containerIp });
      if (family === 4 && container.v6) targets.push({ family: 6, hostIp: '::', containerIp: container.v6 });
    }
    for (const t of targets) {
      const [from, to] = b.HostPort ? [b.HostPort, b.HostPortEnd || b.HostPort] : [EPHEMERAL.start, EPHEMERAL.end];
      let chosen: number | undefined;
      for (let p = from; p <= to && chosen === undefined; p++) if (await tryReserve(proto, t.hostIp, p)) chosen = p;
      if (chosen === undefined) {
        const where = `${t.family === 6 ? `[${t.hostIp}]` : t.hostIp}:${from === to ? from : `${from}-${to}`}`;
        throw invalid(`Bind for ${where}/${proto} failed: port is already allocated`);
      }
      out.push({ proto, family: t.family, hostIp: t.hostIp, hostPort: chosen, containerIp: t.containerIp, containerPort: b.Port });
    }
  }
  return out;
}
