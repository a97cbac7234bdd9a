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

export function planOverlayEntries(remote: RemoteEndpoint[], fdb: FdbEntry[], neigh: NeighEntry[]): OverlayEntriesPlan {
  const wantFdb = new Map(remote.map((e) => [`${e.mac}|${e.vtep}`, { mac: e.mac, dst: e.vtep }]));
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
