/**
 * The only module that talks rtnetlink (through the `netlink` npm package,
 * pinned: its API is early-stage). It exposes verbs on links, addresses,
 * routes and neighbours of the network namespace loomd runs in, and maps
 * kernel errno values to loom's error kinds.
 *
 * Hazards handled here (see docs/architecture.md):
 * - request flags are numbers (FlagsNew.CREATE | FlagsNew.EXCL); an object silently becomes 0;
 * - IFLA_LINKINFO is a raw buffer built with ifla.formatInfo and serialised through an AttrStream;
 * - the library reports errors as "Request rejected: <ERRNO>" strings; parsed once in `kernelError`.
 */
import { AttrStream, FlagsNew, StreamData, createRtNetlink, ifla, rt, RtNetlinkSocket } from 'netlink';
import { Mutex } from 'async-mutex';
import { ErrorKind, LoomError } from '../errors';
import type { Family, Prefix } from '../../ipam-driver/core/prefix';
import { bitsOf, formatCidr, maskOf } from '../../ipam-driver/core/prefix';

/** What loom needs to know about a link. */
export interface LinkInfo {
  index: number;
  name: string;
  /** 'bridge', 'veth', 'vxlan', ... or undefined for physical devices. */
  kind: string | undefined;
  /** ifindex of the bridge this link is enslaved to. */
  master: number | undefined;
  mtu: number;
  mac: string;
  up: boolean;
}

export interface AddressInfo {
  index: number;
  family: Family;
  /** "198.18.10.1/24" */
  cidr: string;
}

export interface RouteInfo {
  prefix: Prefix;
  index: number | undefined;
}

const AF_INET = 2;
const AF_INET6 = 10;
const VETH_INFO_PEER = 1;
const RT_TABLE_MAIN = 254;

function serialise(data: StreamData): Buffer {
  const s = new AttrStream();
  s.emit(data);
  return Buffer.concat(s.bufs);
}

const ERRNO_KIND: Record<string, ErrorKind> = {
  EEXIST: 'conflict',
  ENODEV: 'not-found',
  ENOENT: 'not-found',
  EADDRNOTAVAIL: 'not-found',
  ESRCH: 'not-found',
  EINVAL: 'invalid',
  ERANGE: 'invalid',
  EOPNOTSUPP: 'unavailable',
  EPERM: 'unavailable',
  EACCES: 'unavailable',
  EBUSY: 'conflict',
  ENOBUFS: 'unavailable',
};

/** Maps the netlink library's "Request rejected: EEXIST" into a LoomError with errno. */
export function kernelError(op: string, err: unknown): LoomError {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /Request rejected: ([A-Z0-9]+)/.exec(msg);
  const errno = m?.[1];
  const kind: ErrorKind = (errno && ERRNO_KIND[errno]) || 'internal';
  return new LoomError(kind, `${op}: netlink: ${errno ?? msg}`, errno);
}

export function macToString(buf: Buffer | undefined): string {
  return buf ? [...buf].map((b) => b.toString(16).padStart(2, '0')).join(':') : '';
}

export function macToBuffer(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function ipBytes(family: Family, value: bigint): Buffer {
  const len = family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function bytesToBig(buf: Buffer): bigint {
  let v = 0n;
  for (const b of buf) v = (v << 8n) | BigInt(b);
  return v;
}

function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const info = m.attrs.linkinfo ? ifla.parseInfo(m.attrs.linkinfo) : undefined;
  return {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    kind: info?.kind,
    master: m.attrs.master,
    mtu: m.attrs.mtu ?? 0,
    mac: macToString(m.attrs.address),
    up: Boolean(m.data.flags?.up),
  };
}

export class NetlinkKernel {
  private readonly socket: RtNetlinkSocket;
  /**
   * One request at a time on the socket: the library mixes up the replies of two
   * concurrent dumps ("Multipart message not terminated properly").
   */
  private readonly mutex = new Mutex();

  constructor() {
    this.socket = createRtNetlink();
  }

  /** The socket, to be used only inside `serial`. */
  private get sock(): RtNetlinkSocket {
    return this.socket;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.runExclusive(fn);
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

  async createBridge(name: string, mtu: number): Promise<void> {
    await this.call(`create bridge ${name}`, () =>
      this.sock.newLink({}, { ifname: name, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'bridge' })) }, { flags: FlagsNew.CREATE | FlagsNew.EXCL }),
    );
  }

  /** Creates an IFB device (the queue for shaping what arrives on another device), up. */
  async createIfb(name: string, mtu: number): Promise<void> {
    await this.call(`create ifb ${name}`, () =>
      this.sock.newLink({ flags: { up: true }, change: { up: true } }, { ifname: name, mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'ifb' })) }, {
        flags: FlagsNew.CREATE | FlagsNew.EXCL,
      }),
    );
  }

  /**
   * Creates veth `name` with peer `peer` in one request: the host end already
   * attached to `master` and up, the peer with its MAC and MTU.
   */
  async createVethPair(name: string, peer: string, opts: { mtu: number; peerMac?: string; master?: string }): Promise<void> {
    const peerAttrs: ifla.LinkAttrs = { ifname: peer, mtu: opts.mtu };
    if (opts.peerMac) peerAttrs.address = macToBuffer(opts.peerMac);
    const peerMsg = Buffer.concat([rt.formatLink({}), serialise(ifla.formatLinkAttrs(peerAttrs))]);
    const data = serialise((out: AttrStream) => out.push(VETH_INFO_PEER, peerMsg));
    const attrs: ifla.LinkAttrs = { ifname: name, mtu: opts.mtu, linkinfo: serialise(ifla.formatInfo({ kind: 'veth', data })) };
    if (opts.master) attrs.master = await this.indexOf(opts.master);
    await this.call(`create veth ${name}/${peer}`, () =>
      this.sock.newLink({ flags: { up: true }, change: { up: true } }, attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL }),
    );
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

  async setMaster(name: string, master: string): Promise<void> {
    const [idx, masterIdx] = [await this.indexOf(name), await this.indexOf(master)];
    await this.call(`attach ${name} to ${master}`, () => this.sock.setLink({ index: idx }, { master: masterIdx }));
  }

  async setUp(name: string): Promise<void> {
    const idx = await this.indexOf(name);
    await this.call(`set ${name} up`, () => this.sock.setLink({ index: idx, flags: { up: true }, change: { up: true } }));
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
