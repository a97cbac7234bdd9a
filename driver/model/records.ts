/**
 * Pure construction and validation of network records from CreateNetwork input:
 * options parsed, pools checked (gateway and aux addresses inside, no overlaps within
 * the network), and the small lookups the service needs (the gateway of an address).
 */
import { invalid } from '../../lib/errors';
import { contains, formatIp, formatPrefix, hostRange, overlaps, parseIpMaybeCidr, parsePrefix, unusableSubnet } from '../../lib/prefix';
import { bridgeNameFor } from './naming';
import { parseNetworkSettings } from './options';
import type { EndpointRecord, IpamData, NetworkRecord } from './types';

export interface CreateNetworkInput {
  id: string;
  /** The -o map (com.docker.network.generic). */
  options: Record<string, string>;
  enableIpv6: boolean;
  internal: boolean;
  ipv4: IpamData[];
  ipv6: IpamData[];
}

export function buildNetworkRecord(input: CreateNetworkInput): NetworkRecord {
  const settings = parseNetworkSettings(input.options, { internal: input.internal });
  const ipv4 = input.ipv4.map((d) => checkIpamData(d, 4));
  const ipv6 = input.ipv6.map((d) => checkIpamData(d, 6));
  const pools = [...ipv4, ...ipv6];
  pools.forEach((a, i) =>
    pools.slice(i + 1).forEach((b) => {
      if (overlapping(a.pool, b.pool)) throw invalid(`subnets ${a.pool} and ${b.pool} of one network overlap`);
    }),
  );
  return {
    id: input.id,
    bridge: settings.bridgeName ?? bridgeNameFor(input.id),
    mtu: settings.mtu,
    internal: input.internal,
    icc: settings.icc,
    masquerade: settings.masquerade,
    ...(settings.hostBinding !== '0.0.0.0' ? { hostBinding: settings.hostBinding } : {}),
    ...(Object.keys(settings.rates).length ? { rates: settings.rates } : {}),
    ...(settings.gateway === 'docker' ? { gatewayService: 'docker' as const } : {}),
    enableIpv6: input.enableIpv6,
    ipv4,
    ipv6,
    options: input.options,
    createdAt: new Date().toISOString(),
  };
}

export function checkIpamData(d: IpamData, family: 4 | 6): IpamData {
  const pool = parsePrefix(d.pool, 'pool');
  if (pool.family !== family) throw invalid(`pool ${d.pool} is not an IPv${family} subnet`);
  const unusable = unusableSubnet(pool);
  if (unusable) throw invalid(`pool ${d.pool} cannot carry containers: ${unusable}`);
  const inPool = (cidr: string, what: string): void => {
    const ip = parseIpMaybeCidr(cidr, what);
    if (!contains(pool, ip)) throw invalid(`${what} ${cidr} is outside pool ${d.pool}`);
  };
  if (d.gateway) inPool(d.gateway, 'gateway');
  for (const [name, aux] of Object.entries(d.aux)) inPool(aux, `aux address ${name}`);
  return d;
}

export function checkEndpointAddress(cidr: string, pools: IpamData[], family: 4 | 6): string {
  const ip = parseIpMaybeCidr(cidr, 'endpoint address');
  if (ip.family !== family) throw invalid(`endpoint address ${cidr} is not IPv${family}`);
  const pool = pools.map((d) => parsePrefix(d.pool)).find((p) => contains(p, ip));
  if (!pool) throw invalid(`endpoint address ${cidr} is not inside the network's subnets`);
  const { first, last } = hostRange(pool);
  if (ip.value < first || ip.value > last) {
    throw invalid(`endpoint address ${cidr} is the ${ip.value < first ? (pool.family === 4 ? 'network' : 'subnet-router anycast') : 'broadcast'} address of ${formatPrefix(pool)}`);
  }
  return cidr;
}

/** The gateway (plain IP) of the pool that holds `address`, or of the first pool. */
export function gatewayFor(address: string | undefined, pools: IpamData[]): string | undefined {
  let chosen: IpamData | undefined = pools[0];
  if (address) {
    const ip = parseIpMaybeCidr(address);
    chosen = pools.find((d) => contains(parsePrefix(d.pool), ip));
  }
  if (!chosen?.gateway) return undefined;
  const gw = parseIpMaybeCidr(chosen.gateway);
  return formatIp(gw.family, gw.value);
}

/**
 * True when loom itself connects the network's containers to the outside (its gateway as their
 * default route, NAT, published ports, forwarding beyond the bridge). False for --internal
 * networks, and for networks that leave all of that to Docker's docker_gwbridge (loom.gateway=docker).
 */
export function routesOutside(net: Pick<NetworkRecord, 'internal' | 'gatewayService'>): boolean {
  return !net.internal && net.gatewayService !== 'docker';
}

/** The gateways Join gives an endpoint (plain IPs): none unless loom routes the network outside. */
export function joinGateways(net: NetworkRecord, ep: Pick<EndpointRecord, 'address' | 'addressV6'>): { v4?: string; v6?: string } {
  if (!routesOutside(net)) return {};
  const v4 = gatewayFor(ep.address, net.ipv4);
  const v6 = net.enableIpv6 ? gatewayFor(ep.addressV6, net.ipv6) : undefined;
  return { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) };
}

export function overlapping(a: string, b: string): boolean {
  return overlaps(parsePrefix(a), parsePrefix(b));
}

export function sameNetworkConfig(a: NetworkRecord, b: NetworkRecord): boolean {
  const strip = (n: NetworkRecord): unknown => ({ ...n, createdAt: undefined, adoptedBridge: undefined, borrowed: undefined, overlay: undefined });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** Gateway addresses that belong on the bridge, as kernel verbs want them. */
export function bridgeAddresses(net: NetworkRecord): Array<{ family: 4 | 6; value: bigint; len: number; cidr: string }> {
  const out: Array<{ family: 4 | 6; value: bigint; len: number; cidr: string }> = [];
  for (const d of [...net.ipv4, ...(net.enableIpv6 ? net.ipv6 : [])]) {
    if (!d.gateway) continue;
    const ip = parseIpMaybeCidr(d.gateway, 'gateway');
    out.push({ family: ip.family, value: ip.value, len: ip.len ?? (ip.family === 4 ? 32 : 128), cidr: d.gateway });
  }
  return out;
}

/**
 * The interface holding a network's gateway address(es) in the host's namespace, which the
 * firewall and the forwarding sysctls name: the bridge, or for an overlay with a namespace of
 * its own the host end of its gateway veth.
 */
export function gatewayIfOf(net: Pick<NetworkRecord, 'bridge' | 'overlay'>): string {
  return net.overlay?.ns?.gatewayIf ?? net.bridge;
}
