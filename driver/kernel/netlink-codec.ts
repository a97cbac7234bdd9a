/**
 * The netlink package's wire shapes and loom's: link/address/neighbour types, the
 * constants and byte conversions the kernel adapter needs, and the mapping of the
 * library's "Request rejected: EEXIST" errors to loom's error kinds. Pure.
 */
import { AttrStream, StreamData, ifla, rt } from './netlink-lib';
import { ErrorKind, LoomError } from '../../lib/errors';
import type { Family, Prefix } from '../../lib/prefix';

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
  /** IFLA_IFALIAS: loom's owner mark (`loom:<instance>`, see link-owner.ts) or whatever else is there. */
  alias?: string;
  /** IFLA_LINK in this namespace: a veth's peer (another kind's lower device). */
  peerIndex?: number;
  /** Traffic counters (from IFLA_STATS64). */
  stats?: { rxBytes: bigint; txBytes: bigint; rxPackets: bigint; txPackets: bigint };
}

export interface AddressInfo {
  index: number;
  family: Family;
  /** "198.18.10.1/24" */
  cidr: string;
}

/** A static VXLAN forwarding entry: this MAC lives behind that remote VTEP. */
export interface FdbEntry {
  mac: string;
  dst: string;
}

/** A static neighbour (ARP/ND) entry on a device. */
export interface NeighEntry {
  ip: string;
  mac: string;
}

export interface RouteInfo {
  prefix: Prefix;
  index: number | undefined;
}

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;
export const VXLAN_PORT = Buffer.from([0x12, 0xb5]); // 4789, big-endian
export const VETH_INFO_PEER = 1;
export const RT_TABLE_MAIN = 254;

export function serialise(data: StreamData): Buffer {
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

/** The errno of the netlink library's "Request rejected: EEXIST" messages (undefined for other failures). */
export function errnoOf(err: unknown): string | undefined {
  return /Request rejected: ([A-Z0-9]+)/.exec(err instanceof Error ? err.message : String(err))?.[1];
}

/** Maps the netlink library's "Request rejected: EEXIST" into a LoomError with errno. */
export function kernelError(op: string, err: unknown): LoomError {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof LoomError && err.errno === 'ETIMEDOUT') return new LoomError(err.kind, `${op}: ${msg}`, err.errno);
  const errno = errnoOf(err);
  const kind: ErrorKind = (errno && ERRNO_KIND[errno]) || 'internal';
  return new LoomError(kind, `${op}: netlink: ${errno ?? msg}`, errno);
}

export function macToString(buf: Buffer | undefined): string {
  return buf ? [...buf].map((b) => b.toString(16).padStart(2, '0')).join(':') : '';
}

export function macToBuffer(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function ipBytes(family: Family, value: bigint): Buffer {
  const len = family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function bytesToBig(buf: Buffer): bigint {
  let v = 0n;
  for (const b of buf) v = (v << 8n) | BigInt(b);
  return v;
}

export function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const info = m.attrs.linkinfo ? ifla.parseInfo(m.attrs.linkinfo) : undefined;
  return {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    kind: info?.kind,
    master: m.attrs.master,
    mtu: m.attrs.mtu ?? 0,
    mac: macToString(m.attrs.address),
    up: Boolean(m.data.flags?.up),
    ...(m.attrs.ifalias ? { alias: m.attrs.ifalias } : {}),
    ...(m.attrs.link?.length === 4 && m.attrs.linkNetnsid === undefined ? { peerIndex: m.attrs.link.readUInt32LE(0) } : {}),
    ...(m.attrs.stats64
      ? { stats: { rxBytes: m.attrs.stats64.rxBytes ?? 0n, txBytes: m.attrs.stats64.txBytes ?? 0n, rxPackets: m.attrs.stats64.rxPackets ?? 0n, txPackets: m.attrs.stats64.txPackets ?? 0n } }
      : {}),
  };
}
