/**
 * Prefix and address maths for IPv4 and IPv6 on bigint values. Parsing and
 * formatting go through the `ip-address` library; everything else is integer
 * arithmetic on `[base, base + 2^(bits-len))`, so a /8 or a /64 costs nothing.
 */
import { Address4, Address6 } from 'ip-address';
import { invalid } from './errors';

export type Family = 4 | 6;

/** A network prefix in canonical form: `base` has no host bits set. */
export interface Prefix {
  readonly family: Family;
  readonly base: bigint;
  readonly len: number;
}

/** A single address, optionally with the prefix length it was written with. */
export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** A dotted quad as ip-address accepts it (no leading zeros), with an optional length 0..32. */
const V4_TEXT = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\/(3[0-2]|[12]?\d))?$/;

function parseRaw(text: string, what: string): { family: Family; value: bigint; len: number | undefined } {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64 || text.includes('%')) {
    throw invalid(`invalid ${what} ${JSON.stringify(text)}`);
  }
  // IPv4 without the library (the hot path of every allocation); anything else goes through it.
  const m = V4_TEXT.exec(text);
  if (m) {
    const n = ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
    return { family: 4, value: BigInt(n), len: m[5] === undefined ? undefined : Number(m[5]) };
  }
  const slash = text.indexOf('/');
  const hasLen = slash >= 0;
  if (hasLen && !/^(0|[1-9]\d{0,2})$/.test(text.slice(slash + 1))) throw invalid(`invalid ${what} ${JSON.stringify(text)}`);
  try {
    if (text.includes(':')) {
      const a = new Address6(text);
      return { family: 6, value: a.bigInt(), len: hasLen ? a.subnetMask : undefined };
    }
    const a = new Address4(text);
    return { family: 4, value: a.bigInt(), len: hasLen ? a.subnetMask : undefined };
  } catch {
    throw invalid(`invalid ${what} ${JSON.stringify(text)}`);
  }
}

/** Parses "198.18.10.0/24"; refuses host bits ("198.18.10.5/24") with the canonical form in the message. */
export function parsePrefix(text: string, what = 'subnet'): Prefix {
  const raw = parseRaw(text, what);
  if (raw.len === undefined) throw invalid(`invalid ${what} ${JSON.stringify(text)}: a prefix length is required`);
  const p: Prefix = { family: raw.family, base: raw.value & maskOf(raw.family, raw.len), len: raw.len };
  if (p.base !== raw.value) {
    throw invalid(`invalid ${what} ${text}: it should be ${formatPrefix(p)}`);
  }
  return p;
}

/** Parses a plain address ("198.18.10.7"); a prefix length is refused. */
export function parseIp(text: string, what = 'address'): Ip {
  const raw = parseRaw(text, what);
  if (raw.len !== undefined) throw invalid(`invalid ${what} ${JSON.stringify(text)}: expected an address without prefix length`);
  return { family: raw.family, value: raw.value };
}

/** Parses an address that may carry a prefix length ("198.18.10.1/24" or "198.18.10.1"). */
export function parseIpMaybeCidr(text: string, what = 'address'): Ip & { len: number | undefined } {
  const raw = parseRaw(text, what);
  return { family: raw.family, value: raw.value, len: raw.len };
}

export function maskOf(family: Family, len: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(len))) - 1n);
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4 && value >= 0n && value <= 0xffffffffn) {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.family, p.base)}/${p.len}`;
}

/** "198.18.10.7/24": an address written with the length of the prefix it belongs to. */
export function formatCidr(family: Family, value: bigint, len: number): string {
  return `${formatIp(family, value)}/${len}`;
}

export function sizeOf(p: Prefix): bigint {
  return 1n << BigInt(bitsOf(p.family) - p.len);
}

export function lastOf(p: Prefix): bigint {
  return p.base + sizeOf(p) - 1n;
}

export function contains(p: Prefix, ip: Ip): boolean {
  return ip.family === p.family && ip.value >= p.base && ip.value <= lastOf(p);
}

export function containsPrefix(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && inner.len >= outer.len && inner.base >= outer.base && lastOf(inner) <= lastOf(outer);
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.base <= lastOf(b) && b.base <= lastOf(a);
}

export function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.base === b.base && a.len === b.len;
}

/** The `index`-th subnet of length `len` inside `p` (index 0 is the first). */
export function subnetAt(p: Prefix, len: number, index: bigint): Prefix {
  if (len < p.len || len > bitsOf(p.family)) throw invalid(`cannot split ${formatPrefix(p)} into /${len}`);
  const step = 1n << BigInt(bitsOf(p.family) - len);
  return { family: p.family, base: p.base + index * step, len };
}

/** How many subnets of length `len` fit in `p`. */
export function subnetCount(p: Prefix, len: number): bigint {
  return 1n << BigInt(len - p.len);
}

/**
 * The addresses a host may hold in `p`: without the IPv4 network and broadcast addresses and the
 * IPv6 subnet-router anycast address (none of them exist in a /31, /32, /127 or /128).
 */
export function hostRange(p: Prefix): { first: bigint; last: bigint } {
  const hostBits = bitsOf(p.family) - p.len;
  return {
    first: hostBits >= 2 ? p.base + 1n : p.base,
    last: p.family === 4 && hostBits >= 2 ? lastOf(p) - 1n : lastOf(p),
  };
}

/** Ranges no container network may use (host-wide meaning; routing to them would break the host). */
const RESERVED: Array<[string, string]> = [
  ['0.0.0.0/8', 'the "this network" range'],
  ['127.0.0.0/8', 'loopback'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved (class E and broadcast)'],
  ['::/127', 'unspecified and loopback addresses'],
  ['ff00::/8', 'multicast'],
];

/** Why `p` cannot be a container subnet (a default route's /0, loopback, multicast...), or undefined. */
export function unusableSubnet(p: Prefix): string | undefined {
  if (p.len === 0) return `${formatPrefix(p)} would cover every ${p.family === 4 ? 'IPv4' : 'IPv6'} address`;
  for (const [text, what] of RESERVED) {
    const r = parsePrefix(text);
    if (overlaps(r, p)) return `${formatPrefix(p)} overlaps ${text} (${what})`;
  }
  return undefined;
}

/** The address of a CIDR text as given, without its prefix length ("198.18.10.7/24" -> "198.18.10.7"). */
export function stripLength(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

/** The canonical text of an address given with or without a length ("FD00:0::5/64" -> "fd00::5"). */
export function canonicalIp(text: string): string {
  const ip = parseIpMaybeCidr(text);
  return formatIp(ip.family, ip.value);
}
