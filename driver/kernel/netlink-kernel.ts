/**
 * The one handle the rest of loom uses to talk rtnetlink (through the `netlink` npm package,
 * pinned: its API is early-stage): verbs on links, addresses, routes and neighbours of the
 * network namespace loomd runs in, with kernel errno values mapped to loom's error kinds.
 *
 * A facade over one module per concern, all sharing one request queue:
 * - netlink-channel.ts: one request at a time, each with a deadline (the socket is replaced
 *   after a lost reply);
 * - links.ts: find, list, set, mark, delete links; link-create.ts: create marked links;
 * - addresses.ts: addresses and routes; neighbours.ts: FDB and neighbour entries;
 * - netlink-codec.ts: the library's wire shapes and its "Request rejected: <ERRNO>" errors.
 */
import type { RtNetlinkSocket } from './netlink-lib';
import type { Family } from '../../lib/prefix';
import { AddressVerbs } from './addresses';
import { LinkFactory } from './link-create';
import { LinkVerbs } from './links';
import { NeighbourVerbs } from './neighbours';
import { NetlinkChannel } from './netlink-channel';
import { NetnsLinkVerbs } from './netns-links';
import type { AddressInfo, FdbEntry, LinkInfo, NeighEntry, RouteInfo } from './netlink-codec';

export type { AddressInfo, FdbEntry, LinkInfo, NeighEntry, RouteInfo } from './netlink-codec';
export { NETLINK_TIMEOUT_MS } from './netlink-channel';

export class NetlinkKernel {
  private readonly ch: NetlinkChannel;
  private readonly links: LinkVerbs;
  private readonly factory: LinkFactory;
  private readonly addresses: AddressVerbs;
  private readonly neighbours: NeighbourVerbs;
  private readonly netns: NetnsLinkVerbs;

  /**
   * `mark`: this loomd's owner mark (`loom:<instance>`), put on every link created through
   * this handle. A handle without one (tools, the netns helper) cannot create links.
   * `opts` (tests): the request deadline and the socket factory.
   */
  constructor(
    readonly mark?: string,
    opts: { timeoutMs?: number; open?: () => RtNetlinkSocket } = {},
  ) {
    this.ch = new NetlinkChannel(opts);
    this.links = new LinkVerbs(this.ch, mark);
    this.factory = new LinkFactory(this.ch, this.links);
    this.addresses = new AddressVerbs(this.ch, this.links);
    this.neighbours = new NeighbourVerbs(this.ch, this.links);
    this.netns = new NetnsLinkVerbs(this.ch, this.links);
  }

  /** Called with the errno of every request the kernel refuses (metrics). */
  get onError(): ((errno: string) => void) | undefined {
    return this.ch.onError;
  }

  set onError(fn: ((errno: string) => void) | undefined) {
    this.ch.onError = fn;
  }

  /** Closes the socket; resolves once the deletion worker, if any, has ended (netlink-worker.ts). */
  close(): Promise<void> {
    return this.ch.close();
  }

  // ---- links (links.ts) -------------------------------------------------------------------
  listLinks(): Promise<LinkInfo[]> { return this.links.listLinks(); }
  findLink(name: string): Promise<LinkInfo | undefined> { return this.links.findLink(name); }
  vxlanInfo(name: string): Promise<{ vni: number; local: string | undefined } | undefined> { return this.links.vxlanInfo(name); }
  setOwnerMark(name: string): Promise<void> { return this.links.setOwnerMark(name); }
  deleteOwnedLink(name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> { return this.links.deleteOwnedLink(name, opts); }
  deleteLink(name: string): Promise<boolean> { return this.links.deleteLink(name); }
  setPortIsolated(name: string, isolated: boolean): Promise<void> { return this.links.setPortIsolated(name, isolated); }
  rename(name: string, to: string): Promise<void> { return this.links.rename(name, to); }
  moveToNetns(name: string, nsFd: number): Promise<void> { return this.links.moveToNetns(name, nsFd); }
  setMaster(name: string, master: string): Promise<void> { return this.links.setMaster(name, master); }
  setUp(name: string): Promise<void> { return this.links.setUp(name); }
  setDown(name: string): Promise<void> { return this.links.setDown(name); }
  setMtu(name: string, mtu: number): Promise<void> { return this.links.setMtu(name, mtu); }

  // ---- links in another namespace (netns-links.ts) ---------------------------------------
  nsidOf(nsFd: number): Promise<number> { return this.netns.nsidOf(nsFd); }
  findLinkIn(nsid: number, name: string): Promise<LinkInfo | undefined> { return this.netns.findLinkIn(nsid, name); }
  listLinksIn(nsid: number): Promise<LinkInfo[]> { return this.netns.listLinksIn(nsid); }
  moveInto(name: string, nsFd: number, masterIndex: number): Promise<void> { return this.netns.moveInto(name, nsFd, masterIndex); }
  deleteOwnedLinkIn(nsid: number, name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> { return this.netns.deleteOwnedLinkIn(nsid, name, opts); }

  // ---- creating marked links (link-create.ts) ---------------------------------------------
  createBridge(name: string, mtu: number): Promise<void> { return this.factory.createBridge(name, mtu); }
  createVethPair(name: string, peer: string, opts: { mtu: number; peerMac?: string; master?: string }): Promise<void> { return this.factory.createVethPair(name, peer, opts); }
  createVxlan(name: string, opts: { vni: number; local: string; mtu: number; master?: string; dev?: string }): Promise<void> { return this.factory.createVxlan(name, opts); }
  createIfb(name: string, mtu: number): Promise<void> { return this.factory.createIfb(name, mtu); }
  createVethInto(name: string, peer: string, opts: { nsFd: number; masterIndex: number; mtu: number; peerMac?: string }): Promise<void> { return this.factory.createVethInto(name, peer, opts); }

  // ---- addresses and routes (addresses.ts) ------------------------------------------------
  listAddresses(): Promise<AddressInfo[]> { return this.addresses.listAddresses(); }
  addAddress(name: string, family: Family, value: bigint, len: number): Promise<void> { return this.addresses.addAddress(name, family, value, len); }
  delAddress(name: string, family: Family, value: bigint, len: number): Promise<void> { return this.addresses.delAddress(name, family, value, len); }
  listRoutes(): Promise<RouteInfo[]> { return this.addresses.listRoutes(); }
  addDefaultRoute(dev: string, gateway: string): Promise<void> { return this.addresses.addDefaultRoute(dev, gateway); }

  // ---- FDB and neighbours (neighbours.ts) -------------------------------------------------
  listFdb(dev: string): Promise<FdbEntry[]> { return this.neighbours.listFdb(dev); }
  addFdb(dev: string, e: FdbEntry): Promise<void> { return this.neighbours.addFdb(dev, e); }
  delFdb(dev: string, e: FdbEntry): Promise<void> { return this.neighbours.delFdb(dev, e); }
  listNeigh(dev: string): Promise<NeighEntry[]> { return this.neighbours.listNeigh(dev); }
  addNeigh(dev: string, e: NeighEntry): Promise<void> { return this.neighbours.addNeigh(dev, e); }
  delNeigh(dev: string, ip: string): Promise<void> { return this.neighbours.delNeigh(dev, ip); }
}
