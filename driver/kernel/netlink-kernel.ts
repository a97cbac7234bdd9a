/**
 * The only module that talks rtnetlink (through the `netlink` npm package,
 * pinned: its API is early-stage). It exposes verbs on links, addresses,
 * routes and neighbours of the network namespace loomd runs in, and maps
 * kernel errno values to loom's error kinds.
 *
 * Hazards handled here (see docs/architecture.md):
 * - request flags are numbers (FlagsNew.CREATE | FlagsNew.EXCL); an object silently becomes 0;
 * - IFLA_LINKINFO is a raw buffer built with ifla.formatInfo and serialised through an AttrStream;
 * - the library reports errors as "Request rejected: <ERRNO>" strings; parsed once in `errnoOf` (netlink-codec.ts);
 * - the kernel ignores IFLA_IFALIAS when it creates a link: every link is created under a
 *   temporary name and gets its final name and loom's owner mark in one RTM_SETLINK
 *   (rename, alias, master and up are applied in that order by one request; see link-owner.ts).
 */
import { Mutex } from 'async-mutex';
import { AttrStream, FlagsNew, createRtNetlink, ifla, rt, RtNetlinkSocket } from 'netlink';
import { LoomError } from '../../lib/errors';
import { ownerOf, tempLinkName } from './link-owner';
import type { Family } from '../../lib/prefix';
import { formatCidr, formatIp, maskOf, bitsOf, parseIpMaybeCidr } from '../../lib/prefix';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  AddressInfo,
  FdbEntry,
  LinkInfo,
  NeighEntry,
  RT_TABLE_MAIN,
  RouteInfo,
  VETH_INFO_PEER,
  VXLAN_PORT,
  bytesToBig,
  ipBytes,
  errnoOf,
  kernelError,
  macToBuffer,
  macToString,
  serialise,
  toLinkInfo,
} from './netlink-codec';

export type { AddressInfo, FdbEntry, LinkInfo, NeighEntry, RouteInfo } from './netlink-codec';

/** How long one netlink request may take before it fails (and the socket is replaced). */
export const NETLINK_TIMEOUT_MS = 5_000;

export class NetlinkKernel {
  private socket: RtNetlinkSocket;
  /**
   * One request at a time on the socket: the library mixes up the replies of two
   * concurrent dumps ("Multipart message not terminated properly").
   */
  private readonly mutex = new Mutex();

  /** Called with the errno of every request the kernel refuses (metrics). */
  onError: ((errno: string) => void) | undefined;

  /**
   * `mark`: this loomd's owner mark (`loom:<instance>`), put on every link created through
   * this handle. A handle without one (tools, the netns helper) cannot create links.
   * `opts` (tests): the request deadline and the socket factory.
   */
  constructor(
    readonly mark?: string,
    private readonly opts: { timeoutMs?: number; open?: () => RtNetlinkSocket } = {},
  ) {
    this.socket = (opts.open ?? createRtNetlink)();
  }

  /** The socket, to be used only inside `serial`. */
  private get sock(): RtNetlinkSocket {
    return this.socket;
  }

  /**
   * Runs one request at a time, each with a deadline: a reply the kernel never sends fails that
   * request (ETIMEDOUT) instead of blocking every later kernel call behind the lock. The socket is
   * then replaced, so a late reply cannot be taken for the answer to a later request.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.runExclusive(async () => {
      const ms = this.opts.timeoutMs ?? NETLINK_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new LoomError('unavailable', `netlink request got no answer within ${ms} ms`, 'ETIMEDOUT')), ms);
      });
      try {
        return await Promise.race([fn(), expired]);
      } catch (err) {
        if (err instanceof LoomError && err.errno === 'ETIMEDOUT') this.replaceSocket();
        this.onError?.(errnoOf(err) ?? (err instanceof LoomError && err.errno ? err.errno : 'other'));
        throw err;
      } finally {
        clearTimeout(timer);
      }
    });
  }

  private replaceSocket(): void {
    const old = this.socket;
    this.socket = (this.opts.open ?? createRtNetlink)();
    try {
      old.socket.socket.close();
    } catch {
      // already closed
    }
  }

  close(): void {
    this.socket.socket.socket.close();
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.serial(fn);
    } catch (err) {
      throw kernelError(op, err);
    }
  }

  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.call('list links', () => this.sock.getLinks());
    return msgs.map(toLinkInfo);
  }

  /** A link by name, or undefined when it does not exist. */
  async findLink(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.serial(() => this.sock.getLink({}, { ifname: name }));
      return m ? toLinkInfo(m) : undefined;
    } catch (err) {
      const e = kernelError(`get link ${name}`, err);
      if (e.errno === 'ENODEV') return undefined;
      throw e;
    }
  }

  private async indexOf(name: string): Promise<number> {
    const link = await this.findLink(name);
    if (!link) throw new LoomError('not-found', `link ${name} not found`, 'ENODEV');
    return link.index;
  }

  /** Creates a bridge (down) carrying this loomd's owner mark. */
  async createBridge(name: string, mtu: number): Promise<void> {
    await this.createMarked(name, {}, (temp) =>
      this.call(`create bridge ${name}`, () =>
        this.sock.newLink({}, { ifname: temp, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'bridge' })) }, { flags: FlagsNew.CREATE | FlagsNew.EXCL }),
      ),
    );
  }

  private requireMark(): string {
    if (!this.mark) throw new LoomError('internal', 'this netlink handle has no owner mark and cannot create links');
    return this.mark;
  }

  /**
   * Creates a link under its temporary name (`create`, which must leave it down), then names it
   * `name` and marks it in one request, also attaching it to `finish.master` and setting it up.
   * A leftover of an attempt killed between the two (same temporary name) is removed first; if
   * naming fails (`name` is taken), the temporary link is removed again.
   * `peer`: a veth's container end, named and marked before the host end.
   */
  private async createMarked(name: string, finish: { master?: number; up?: boolean; peer?: string }, create: (temp: string, tempPeer?: string) => Promise<unknown>): Promise<void> {
    const mark = this.requireMark();
    const temp = tempLinkName(mark, name);
    const tempPeer = finish.peer ? tempLinkName(mark, finish.peer) : undefined;
    for (const t of [temp, tempPeer]) if (t) await this.deleteLink(t);
    await create(temp, tempPeer);
    try {
      const link = await this.findLink(temp);
      if (!link) throw new LoomError('internal', `link ${temp} vanished right after it was created`);
      if (finish.peer) {
        const peerIdx = link.peerIndex;
        if (peerIdx === undefined) throw new LoomError('internal', `veth ${temp} has no peer in this namespace`);
        await this.nameAndMark(peerIdx, finish.peer, mark, {});
      }
      await this.nameAndMark(link.index, name, mark, finish);
    } catch (err) {
      await this.deleteLink(temp).catch(() => false);
      throw err;
    }
  }

  private async nameAndMark(index: number, name: string, mark: string, finish: { master?: number; up?: boolean }): Promise<void> {
    const data: rt.Link = finish.up ? { index, flags: { up: true }, change: { up: true } } : { index };
    try {
      await this.serial(() => this.sock.setLink(data, { ifname: name, ifalias: mark, ...(finish.master !== undefined ? { master: finish.master } : {}) }));
    } catch (err) {
      const e = kernelError(`name and mark ${name}`, err);
      if (e.errno === 'EEXIST') throw new LoomError('conflict', `interface ${name} already exists`, 'EEXIST');
      throw e;
    }
  }

  /** Puts this loomd's owner mark on an existing link (a link an earlier loom made without one). */
  async setOwnerMark(name: string): Promise<void> {
    const mark = this.requireMark();
    const idx = await this.indexOf(name);
    await this.call(`mark ${name}`, () => this.sock.setLink({ index: idx }, { ifalias: mark }));
  }

  /**
   * Deletes link `name` only if it is this loomd's: it carries this loomd's mark, or no loom
   * mark at all when `unmarkedToo` (a link an earlier loom made, named in this loomd's
   * records). The check and the deletion address the same object (by index). Returns
   * 'deleted', 'absent', or 'not-ours' (left alone).
   */
  async deleteOwnedLink(name: string, opts: { unmarkedToo?: boolean } = {}): Promise<'deleted' | 'absent' | 'not-ours'> {
    const mark = this.requireMark();
    const link = await this.findLink(name);
    if (!link) return 'absent';
    const owner = ownerOf(link.alias, mark);
    if (owner === 'foreign' || (owner === 'none' && !opts.unmarkedToo)) return 'not-ours';
    try {
      await this.serial(() => this.sock.delLink({ index: link.index }));
      return 'deleted';
    } catch (err) {
      const e = kernelError(`delete link ${name}`, err);
      if (e.errno === 'ENODEV') return 'absent';
      throw e;
    }
  }

  /**
   * A VXLAN device for an overlay: learning off (entries are static), ARP/ND proxy on
   * (answers from the static neighbour table, so no broadcast crosses the tunnel),
   * attached to its bridge and up.
   */
  async createVxlan(name: string, opts: { vni: number; local: string; mtu: number; master: string; dev?: string }): Promise<void> {
    const local = parseIpMaybeCidr(opts.local);
    const data: ifla.Vxlan = { id: opts.vni, learning: 0, proxy: 1, port: VXLAN_PORT, ttl: 64 };
    if (local.family === 4) data.local = ipBytes(4, local.value);
    else data.local6 = ipBytes(6, local.value);
    if (opts.dev) data.link = await this.indexOf(opts.dev);
    const master = await this.indexOf(opts.master);
    await this.createMarked(name, { master, up: true }, (temp) =>
      this.call(`create vxlan ${name} vni ${opts.vni}`, () =>
        this.sock.newLink(
          {},
          { ifname: temp, mtu: opts.mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'vxlan', data: serialise(ifla.formatVxlan(data)) })) },
          { flags: FlagsNew.CREATE | FlagsNew.EXCL },
        ),
      ),
    );
  }

  /** VNI and local address of a VXLAN device (undefined when `name` is not one). */
  async vxlanInfo(name: string): Promise<{ vni: number; local: string | undefined } | undefined> {
    const m = await this.serial(async () => (await this.sock.getLink({}, { ifname: name }).catch(() => []))[0]);
    const info = m?.attrs.linkinfo ? ifla.parseInfo(m.attrs.linkinfo) : undefined;
    if (!info || info.kind !== 'vxlan' || !info.data) return undefined;
    const vx = ifla.parseVxlan(info.data);
    const local = vx.local ? formatIp(4, bytesToBig(vx.local)) : vx.local6 ? formatIp(6, bytesToBig(vx.local6)) : undefined;
    return { vni: vx.id ?? 0, local };
  }

  async listFdb(dev: string): Promise<FdbEntry[]> {
    const idx = await this.indexOf(dev);
    const msgs = await this.call(`list fdb of ${dev}`, () => this.sock.getNeighbors({ family: AF_BRIDGE }));
    return msgs
      .filter((m) => m.data.ifindex === idx && m.attrs.dst && m.attrs.lladdr)
      .map((m) => ({ mac: macToString(m.attrs.lladdr), dst: formatIp(m.attrs.dst?.length === 4 ? 4 : 6, bytesToBig(m.attrs.dst as Buffer)) }));
  }

  async addFdb(dev: string, e: FdbEntry): Promise<void> {
    const idx = await this.indexOf(dev);
    const dst = parseIpMaybeCidr(e.dst);
    await this.call(`add fdb ${e.mac} -> ${e.dst} on ${dev}`, () =>
      this.sock.newNeighbor({ family: AF_BRIDGE, ifindex: idx, state: { permanent: true }, flags: { self: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(dst.family, dst.value) }, {
        flags: FlagsNew.CREATE | FlagsNew.REPLACE,
      }),
    );
  }

  async delFdb(dev: string, e: FdbEntry): Promise<void> {
    const idx = await this.indexOf(dev);
    const dst = parseIpMaybeCidr(e.dst);
    try {
      await this.serial(() => this.sock.delNeighbor({ family: AF_BRIDGE, ifindex: idx, flags: { self: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(dst.family, dst.value) }));
    } catch (err) {
      const k = kernelError(`delete fdb ${e.mac} on ${dev}`, err);
      if (k.errno !== 'ENOENT') throw k;
    }
  }

  async listNeigh(dev: string): Promise<NeighEntry[]> {
    const idx = await this.indexOf(dev);
    const out: NeighEntry[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const msgs = await this.call(`list neighbours of ${dev}`, () => this.sock.getNeighbors({ family }));
      for (const m of msgs) {
        if (m.data.ifindex !== idx || !m.attrs.dst || !m.attrs.lladdr || !m.data.state?.permanent) continue;
        out.push({ ip: formatIp(family === AF_INET ? 4 : 6, bytesToBig(m.attrs.dst)), mac: macToString(m.attrs.lladdr) });
      }
    }
    return out;
  }

  async addNeigh(dev: string, e: NeighEntry): Promise<void> {
    const idx = await this.indexOf(dev);
    const ip = parseIpMaybeCidr(e.ip);
    await this.call(`add neighbour ${e.ip} ${e.mac} on ${dev}`, () =>
      this.sock.newNeighbor({ family: ip.family === 4 ? AF_INET : AF_INET6, ifindex: idx, state: { permanent: true } }, { lladdr: macToBuffer(e.mac), dst: ipBytes(ip.family, ip.value) }, {
        flags: FlagsNew.CREATE | FlagsNew.REPLACE,
      }),
    );
  }

  async delNeigh(dev: string, ip: string): Promise<void> {
    const idx = await this.indexOf(dev);
    const a = parseIpMaybeCidr(ip);
    try {
      await this.serial(() => this.sock.delNeighbor({ family: a.family === 4 ? AF_INET : AF_INET6, ifindex: idx }, { dst: ipBytes(a.family, a.value) }));
    } catch (err) {
      const k = kernelError(`delete neighbour ${ip} on ${dev}`, err);
      if (k.errno !== 'ENOENT') throw k;
    }
  }

  /** Creates an IFB device (the queue for shaping what arrives on another device), up. */
  async createIfb(name: string, mtu: number): Promise<void> {
    await this.createMarked(name, { up: true }, (temp) =>
      this.call(`create ifb ${name}`, () =>
        this.sock.newLink({}, { ifname: temp, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'ifb' })) }, { flags: FlagsNew.CREATE | FlagsNew.EXCL }),
      ),
    );
  }

  /**
   * Creates veth `name` with peer `peer`, both marked: the host end attached to `master`
   * and up, the peer (down) with its MAC and MTU.
   */
  async createVethPair(name: string, peer: string, opts: { mtu: number; peerMac?: string; master?: string }): Promise<void> {
    const master = opts.master ? await this.indexOf(opts.master) : undefined;
    await this.createMarked(name, { up: true, peer, ...(master !== undefined ? { master } : {}) }, (temp, tempPeer) => {
      const peerAttrs: ifla.LinkAttrs = { ifname: tempPeer as string, mtu: opts.mtu };
      if (opts.peerMac) peerAttrs.address = macToBuffer(opts.peerMac);
      const peerMsg = Buffer.concat([rt.formatLink({}), serialise(ifla.formatLinkAttrs(peerAttrs))]);
      const data = serialise((out: AttrStream) => out.push(VETH_INFO_PEER, peerMsg));
      const attrs: ifla.LinkAttrs = { ifname: temp, mtu: opts.mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'veth', data })) };
      return this.call(`create veth ${name}/${peer}`, () => this.sock.newLink({}, attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
    });
  }

  /**
   * Bridge port isolation: isolated ports cannot reach each other, only the bridge
   * itself and non-isolated ports (enable_icc=false, without depending on br_netfilter).
   * Slave data is only applied by RTM_NEWLINK on an existing link, not by RTM_SETLINK.
   */
  async setPortIsolated(name: string, isolated: boolean): Promise<void> {
    const idx = await this.indexOf(name);
    const slaveData = serialise(ifla.formatBridgePort({ isolated: Buffer.from([isolated ? 1 : 0]) }));
    await this.call(`set ${name} isolated ${isolated ? 'on' : 'off'}`, () =>
      this.sock.newLink({ index: idx }, { linkinfo: serialise(ifla.formatInfo({ slaveKind: 'bridge', slaveData })) }),
    );
  }

  async rename(name: string, to: string): Promise<void> {
    if (name === to) return;
    const idx = await this.indexOf(name);
    await this.call(`rename ${name} to ${to}`, () => this.sock.setLink({ index: idx }, { ifname: to }));
  }

  /** Adds a default route through `gateway` on `dev`. */
  async addDefaultRoute(dev: string, gateway: string): Promise<void> {
    const idx = await this.indexOf(dev);
    const gw = parseIpMaybeCidr(gateway);
    await this.call(`add default route via ${gateway}`, () =>
      this.sock.newRoute(
        { family: gw.family === 4 ? AF_INET : AF_INET6, dstLen: 0, table: RT_TABLE_MAIN, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST' },
        { gateway: ipBytes(gw.family, gw.value), oif: idx },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }

  /** Moves a link into the network namespace open at `nsFd` (see netns-file.ts: never a path from a request). */
  async moveToNetns(name: string, nsFd: number): Promise<void> {
    const idx = await this.indexOf(name);
    await this.call(`move ${name} to namespace fd ${nsFd}`, () => this.sock.setLink({ index: idx }, { netNsFd: nsFd }));
  }

  async setMaster(name: string, master: string): Promise<void> {
    const [idx, masterIdx] = [await this.indexOf(name), await this.indexOf(master)];
    await this.call(`attach ${name} to ${master}`, () => this.sock.setLink({ index: idx }, { master: masterIdx }));
  }

  async setUp(name: string): Promise<void> {
    const idx = await this.indexOf(name);
    await this.call(`set ${name} up`, () => this.sock.setLink({ index: idx, flags: { up: true }, change: { up: true } }));
  }

  async setDown(name: string): Promise<void> {
    const idx = await this.indexOf(name);
    await this.call(`set ${name} down`, () => this.sock.setLink({ index: idx, flags: {}, change: { up: true } }));
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    const idx = await this.indexOf(name);
    await this.call(`set ${name} mtu ${mtu}`, () => this.sock.setLink({ index: idx }, { mtu }));
  }

  /** Deletes a link; returns false when it did not exist. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.serial(() => this.sock.delLink({}, { ifname: name }));
      return true;
    } catch (err) {
      const e = kernelError(`delete link ${name}`, err);
      if (e.errno === 'ENODEV') return false;
      throw e;
    }
  }

  async listAddresses(): Promise<AddressInfo[]> {
    const msgs = await this.call('list addresses', () => this.sock.getAddresses());
    const out: AddressInfo[] = [];
    for (const m of msgs) {
      const fam = m.data.family === AF_INET ? 4 : m.data.family === AF_INET6 ? 6 : undefined;
      const addr = m.attrs.address ?? m.attrs.local;
      if (!fam || !addr) continue;
      out.push({ index: m.data.index ?? 0, family: fam, cidr: formatCidr(fam, bytesToBig(addr), m.data.prefixlen ?? 0) });
    }
    return out;
  }

  /** Adds an address with its prefix length; an address already present is fine. */
  async addAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const idx = await this.indexOf(name);
    const bytes = ipBytes(family, value);
    const attrs: rt.AddressAttrs = { local: bytes, address: bytes };
    if (family === 4 && len < 31) {
      const bcast = (value & maskOf(4, len)) | ((1n << BigInt(32 - len)) - 1n);
      attrs.broadcast = ipBytes(4, bcast);
    }
    try {
      await this.serial(() =>
        this.sock.newAddress({ family: family === 4 ? AF_INET : AF_INET6, prefixlen: len, index: idx }, attrs, {
          flags: FlagsNew.CREATE | FlagsNew.EXCL,
        }),
      );
    } catch (err) {
      const e = kernelError(`add address ${formatCidr(family, value, len)} to ${name}`, err);
      if (e.errno !== 'EEXIST') throw e;
    }
  }

  async delAddress(name: string, family: Family, value: bigint, len: number): Promise<void> {
    const idx = await this.indexOf(name);
    const bytes = ipBytes(family, value);
    try {
      await this.serial(() => this.sock.delAddress({ family: family === 4 ? AF_INET : AF_INET6, prefixlen: len, index: idx }, { local: bytes, address: bytes }));
    } catch (err) {
      const e = kernelError(`delete address ${formatCidr(family, value, len)} from ${name}`, err);
      if (e.errno !== 'EADDRNOTAVAIL' && e.errno !== 'ENODEV') throw e;
    }
  }

  /** Prefixes of the main routing table (both families). */
  async listRoutes(): Promise<RouteInfo[]> {
    const msgs = await this.call('list routes', () => this.sock.getRoutes());
    const out: RouteInfo[] = [];
    for (const m of msgs) {
      const fam: Family | undefined = m.data.family === AF_INET ? 4 : m.data.family === AF_INET6 ? 6 : undefined;
      if (!fam) continue;
      const table = m.attrs.table ?? m.data.table;
      if (table !== RT_TABLE_MAIN) continue;
      const len = m.data.dstLen ?? 0;
      const base = m.attrs.dst ? bytesToBig(m.attrs.dst) & maskOf(fam, len) : 0n;
      if (len > bitsOf(fam)) continue;
      out.push({ prefix: { family: fam, base, len }, index: m.attrs.oif });
    }
    return out;
  }
}
