/**
 * Rebuilding loom's records from Docker's view (pure: Docker's inspect data in, store entries
 * out), for `loomctl store rebuild` when the store is damaged and no good snapshot exists.
 *
 * From each network of loom's driver: the NetworkRecord (the same builder CreateNetwork uses,
 * fed with the network's -o options and IPAM config); with loom's IPAM driver, its pools and
 * allocations (gateway, aux addresses, each endpoint's addresses: explicit when the container
 * asked for it with --ip, else dynamic); its endpoints with their addresses, MAC, driver-opts,
 * sandbox and the published ports of the container's default-route network.
 *
 * Docker's IPAM config omits gateways it chose itself: they are read from a container on the
 * network, else from the bridge's addresses in the kernel.
 * What Docker does not show is chosen on the safe side and reported: a bridge named with
 * com.docker.network.bridge.name is recorded as adopted (kept when the network is removed);
 * overlay networks are not rebuilt (their VNI and peers live in the cluster; recreate them).
 */
import type Dockerode from 'dockerode';
import { LOCAL_SPACE, GLOBAL_SPACE } from '../../ipam-driver/index';
import { buildNetworkRecord, routesOutside } from '../model/records';
import { bridgeNameFor, hostVethFor, ifbFor, peerVethFor } from '../model/naming';
import { parseRates } from '../model/rates';
import type { EndpointRecord, IpamData, NetworkRecord } from '../model/types';
import type { PublishedPort } from '../model/port-map';
import type { AllocationKind, AllocationRecord, PoolRecord } from '../../ipam-driver/index';
import { poolIdOf } from '../../ipam-driver/index';
import { stripLength, contains, parseIpMaybeCidr, parsePrefix } from '../../lib/prefix';

export interface RebuildResult {
  entries: Array<[string, unknown]>;
  networks: number;
  endpoints: number;
  pools: number;
  allocations: number;
  /** What could not be rebuilt, one line each. */
  skipped: string[];
}

type Net = Dockerode.NetworkInspectInfo & { Created?: string; EnableIPv6?: boolean; Internal?: boolean };
type Ctr = Dockerode.ContainerInspectInfo;

const cidr = (ip: string, pool: string): string => `${stripLength(ip)}/${pool.split('/')[1]}`;

/**
 * Docker's IPAM config names a gateway only when the user gave one (--gateway): otherwise it is
 * taken from a container on the network, else from `bridgeAddresses` (the CIDRs the bridge holds
 * in the kernel, looked up by the caller).
 */
function gatewayOf(n: Net, subnet: string, containers: Map<string, Ctr>, bridgeAddresses: string[]): string | undefined {
  const pre = parsePrefix(subnet);
  const inSubnet = (ip: string | undefined): boolean => Boolean(ip) && contains(pre, parseIpMaybeCidr(ip as string));
  for (const id of Object.keys(n.Containers ?? {})) {
    for (const s of Object.values(containers.get(id)?.NetworkSettings.Networks ?? {})) {
      if (s.NetworkID !== n.Id) continue;
      const gw = [s.Gateway, s.IPv6Gateway].find(inSubnet);
      if (gw) return gw;
    }
  }
  const found = bridgeAddresses.find(inSubnet);
  return found === undefined ? undefined : stripLength(found);
}

/** Store entries (schema v1 keys, see schema.ts) for `networks` of `driver`. */
export function rebuildEntries(networks: Net[], containers: Map<string, Ctr>, driver: string, bridgeAddresses: (bridge: string) => string[] = () => []): RebuildResult {
  const out: RebuildResult = { entries: [], networks: 0, endpoints: 0, pools: 0, allocations: 0, skipped: [] };
  const now = new Date().toISOString();
  for (const n of networks.filter((x) => x.Driver === driver)) {
    const options = (n.Options ?? {}) as Record<string, string>;
    if (options['loom.mode'] === 'overlay') {
      out.skipped.push(`network ${n.Name} (${n.Id.slice(0, 12)}): an overlay; recreate it (docker network rm/create) once loomd runs`);
      continue;
    }
    const bridge = options['com.docker.network.bridge.name'] ?? bridgeNameFor(n.Id);
    const configs = ((n.IPAM?.Config ?? []) as Array<{ Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }>).map((c) =>
      c.Subnet && !c.Gateway ? { ...c, Gateway: gatewayOf(n, c.Subnet, containers, bridgeAddresses(bridge)) } : c,
    );
    const ipam = configs.filter((c) => c.Subnet).map((c) => ({
      c,
      v6: (c.Subnet as string).includes(':'),
      data: {
        pool: c.Subnet as string,
        ...(c.Gateway ? { gateway: cidr(c.Gateway, c.Subnet as string) } : {}),
        aux: Object.fromEntries(Object.entries(c.AuxiliaryAddresses ?? {}).map(([k, a]) => [k, cidr(a, c.Subnet as string)])),
      } as IpamData,
    }));
    let record: NetworkRecord;
    try {
      record = buildNetworkRecord({
        id: n.Id,
        options,
        enableIpv6: Boolean(n.EnableIPv6),
        internal: Boolean(n.Internal),
        ipv4: ipam.filter((p) => !p.v6).map((p) => p.data),
        ipv6: ipam.filter((p) => p.v6).map((p) => p.data),
      });
    } catch (err) {
      out.skipped.push(`network ${n.Name} (${n.Id.slice(0, 12)}): ${(err as Error).message}`);
      continue;
    }
    if (options['com.docker.network.bridge.name']) record.adoptedBridge = true;
    record.createdAt = n.Created ?? now;
    out.entries.push([`net/${n.Id}`, record]);
    out.networks++;

    // IPAM: only when loom's IPAM driver served the network.
    const allocs = new Map<string, Map<string, AllocationKind>>();
    const pools: PoolRecord[] = [];
    if (n.IPAM?.Driver === driver) {
      const space = n.Scope === 'swarm' || n.Scope === 'global' ? GLOBAL_SPACE : LOCAL_SPACE;
      for (const p of ipam) {
        const pool = parsePrefix(p.c.Subnet as string);
        const sub = p.c.IPRange ? parsePrefix(p.c.IPRange) : undefined;
        const id = poolIdOf(space, pool, sub);
        pools.push({ id, addressSpace: space, pool: p.c.Subnet as string, ...(p.c.IPRange ? { subPool: p.c.IPRange } : {}), v6: p.v6, options: (n.IPAM?.Options ?? {}) as Record<string, string>, refs: 1, auto: false, cursor: '-1', createdAt: record.createdAt });
        const m = new Map<string, AllocationKind>();
        if (p.c.Gateway) m.set(stripLength(p.c.Gateway), 'gateway');
        for (const a of Object.values(p.data.aux)) m.set(stripLength(a), 'explicit');
        allocs.set(id, m);
      }
    }
    const poolOf = (addr: string): PoolRecord | undefined => {
      const ip = parseIpMaybeCidr(addr);
      return pools.find((p) => contains(parsePrefix(p.pool), ip));
    };

    for (const [ctrId, e] of Object.entries(n.Containers ?? {}) as Array<[string, { EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }]>) {
      const ctr = containers.get(ctrId);
      const settings = ctr ? Object.values(ctr.NetworkSettings.Networks ?? {}).find((s) => s.EndpointID === e.EndpointID) : undefined;
      const driverOpts = ((settings as { DriverOpts?: Record<string, string> } | undefined)?.DriverOpts ?? {}) as Record<string, string>;
      const rates = { ...record.rates, ...parseRates(driverOpts) };
      const address = e.IPv4Address || undefined;
      const addressV6 = e.IPv6Address || undefined;
      const ep: EndpointRecord = {
        networkId: n.Id,
        id: e.EndpointID,
        hostIf: hostVethFor(e.EndpointID),
        peerIf: peerVethFor(e.EndpointID),
        mac: e.MacAddress,
        macFromDocker: Boolean((ctr?.Config as { MacAddress?: string } | undefined)?.MacAddress),
        ...(address ? { address } : {}),
        ...(addressV6 ? { addressV6 } : {}),
        options: driverOpts,
        ...(ctr?.State?.Running && ctr.NetworkSettings.SandboxKey ? { sandboxKey: ctr.NetworkSettings.SandboxKey } : {}),
        ...(Object.keys(rates).length ? { rates } : {}),
        ...(rates.egressBps ? { ifb: ifbFor(e.EndpointID) } : {}),
        createdAt: ctr?.Created ?? now,
      };
      const ports = publishedPorts(ctr, record, address);
      if (ports.length) ep.ports = ports;
      out.entries.push([`ep/${n.Id}/${e.EndpointID}`, ep]);
      out.endpoints++;
      const requested = (settings as { IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } } | undefined)?.IPAMConfig;
      for (const [a, asked] of [[address, requested?.IPv4Address], [addressV6, requested?.IPv6Address]] as Array<[string | undefined, string | undefined]>) {
        const p = a ? poolOf(a) : undefined;
        if (a && p) allocs.get(p.id)?.set(stripLength(a), asked ? 'explicit' : 'dynamic');
      }
    }
    for (const p of pools) {
      const m = allocs.get(p.id) ?? new Map<string, AllocationKind>();
      // Next-fit continues after the highest address handed out dynamically.
      const dyn = [...m].filter(([, k]) => k === 'dynamic').map(([a]) => parseIpMaybeCidr(a).value);
      if (dyn.length) p.cursor = dyn.reduce((x, y) => (y > x ? y : x)).toString();
      out.entries.push([`ipam/pool/${p.id}`, p]);
      out.pools++;
      for (const [address, kind] of m) {
        const rec: AllocationRecord = { poolId: p.id, address, kind, createdAt: p.createdAt };
        out.entries.push([`ipam/addr/${p.id}|${address}`, rec]);
        out.allocations++;
      }
    }
  }
  return out;
}

/** The container's published ports, on the network that gives it its default route only. */
function publishedPorts(ctr: Ctr | undefined, net: NetworkRecord, address: string | undefined): PublishedPort[] {
  // Docker 20.10 names the default-route gateway at the top; newer engines only per network
  // (then a container on one network is the only unambiguous case).
  const nets = Object.values(ctr?.NetworkSettings.Networks ?? {});
  const gw = (ctr?.NetworkSettings as { Gateway?: string } | undefined)?.Gateway || (nets.length === 1 ? nets[0]?.Gateway : undefined);
  // loom.gateway=docker: the ports Docker shows are docker_gwbridge's, never loom's.
  if (!routesOutside(net)) return [];
  if (!ctr || !address || !gw || !net.ipv4.some((d) => d.gateway !== undefined && stripLength(d.gateway) === gw)) return [];
  const out: PublishedPort[] = [];
  for (const [key, bindings] of Object.entries(ctr.NetworkSettings.Ports ?? {})) {
    const [port, proto] = key.split('/');
    for (const b of bindings ?? []) {
      if (!b.HostPort) continue;
      const hostIp = b.HostIp || '0.0.0.0';
      out.push({ proto: (proto ?? 'tcp') as PublishedPort['proto'], family: hostIp.includes(':') ? 6 : 4, hostIp, hostPort: Number(b.HostPort), containerIp: stripLength(address), containerPort: Number(port) });
    }
  }
  return out.filter((p) => p.family === 4);
}
