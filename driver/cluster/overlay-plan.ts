/**
 * Pure diff of one overlay network's VXLAN entries: what etcd says remote endpoints
 * are (desired) against the static FDB and neighbour entries in the kernel (actual).
 * Only static entries with a remote VTEP are loom's; the bridge's own entries are left alone.
 */
import type { FdbEntry, NeighEntry } from '../kernel/netlink-kernel';
import type { RemoteEndpoint } from './agent';

export interface OverlayEntriesPlan {
  addFdb: FdbEntry[];
  delFdb: FdbEntry[];
  addNeigh: NeighEntry[];
  delNeigh: NeighEntry[];
}

/**
 * The endpoints whose entries are wanted when several claim one MAC or address (a container
 * that moved with its --ip: its MAC is derived from the address). The kernel keeps one
 * destination per MAC (entries are replaced), so one endpoint must win: a retiring endpoint
 * (deleted in etcd, kept for a moment) never beats a live one; among equals the later one
 * in `remote` (published later on this host) wins.
 */
export function preferLive(remote: RemoteEndpoint[], retiring: (ep: RemoteEndpoint) => boolean): RemoteEndpoint[] {
  const live = remote.filter((e) => !retiring(e));
  const liveMacs = new Set(live.map((e) => e.mac));
  const liveIps = new Set(live.flatMap((e) => [e.ip, e.ip6].filter((x): x is string => Boolean(x))));
  return remote.filter((e) => !retiring(e) || (!liveMacs.has(e.mac) && ![e.ip, e.ip6].some((ip) => ip && liveIps.has(ip))));
}

export function planOverlayEntries(remote: RemoteEndpoint[], fdb: FdbEntry[], neigh: NeighEntry[]): OverlayEntriesPlan {
  // One destination per MAC, as the kernel keeps it: the last endpoint with that MAC wins.
  const byMac = new Map(remote.map((e) => [e.mac, e]));
  const wantFdb = new Map([...byMac.values()].map((e) => [`${e.mac}|${e.vtep}`, { mac: e.mac, dst: e.vtep }]));
  const wantNeigh = new Map<string, NeighEntry>();
  for (const e of remote) for (const ip of [e.ip, e.ip6]) if (ip) wantNeigh.set(ip, { ip, mac: e.mac });
  const haveFdb = new Map(fdb.map((e) => [`${e.mac}|${e.dst}`, e]));
  const haveNeigh = new Map(neigh.map((e) => [e.ip, e]));
  return {
    addFdb: [...wantFdb].filter(([k]) => !haveFdb.has(k)).map(([, e]) => e),
    delFdb: [...haveFdb].filter(([k]) => !wantFdb.has(k)).map(([, e]) => e),
    addNeigh: [...wantNeigh].filter(([ip, e]) => haveNeigh.get(ip)?.mac !== e.mac).map(([, e]) => e),
    delNeigh: [...haveNeigh].filter(([ip]) => !wantNeigh.has(ip)).map(([, e]) => e),
  };
}
