/**
 * MAC addresses of loom's endpoints. By default the MAC is derived from the endpoint's address
 * (02:42 followed by the four bytes of its IPv4 address, as Docker 20.10 does; an IPv6-only
 * endpoint uses the last four bytes of its IPv6 address): a container that comes back with the
 * same address comes back with the same MAC, so its peers' neighbour caches (and, on overlays,
 * every host's FDB and neighbour entries) stay right and it is reachable at once. Addresses are
 * unique in a network (cluster-wide for overlays), so derived MACs are too; a MAC Docker passes
 * (--mac-address) wins, and a random one is the fallback.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseIpMaybeCidr } from '../../lib/prefix';

const hex = (b: number): string => b.toString(16).padStart(2, '0');

/** A random locally administered (bit 1 set), unicast (bit 0 clear) MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] as number) & 0xfe) | 0x02;
  return [...b].map(hex).join(':');
}

/** The MAC derived from an endpoint's addresses (IPv4 first), or undefined when it has none. */
export function macFor(address: string | undefined, addressV6: string | undefined): string | undefined {
  const text = address ?? addressV6;
  if (!text) return undefined;
  const low = Number(parseIpMaybeCidr(text).value & 0xffffffffn);
  return ['02', '42', ...[24, 16, 8, 0].map((s) => hex((low >>> s) & 0xff))].join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Normalises "02:42:AC:11:00:02" to lower case; undefined for anything else. */
export function normaliseMac(text: string): string | undefined {
  if (!MAC_RE.test(text)) return undefined;
  const mac = text.toLowerCase();
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) return undefined; // multicast addresses cannot name an interface
  if (mac === '00:00:00:00:00:00') return undefined;
  return mac;
}

/**
 * The MAC of an overlay's gateway veth on this host (docs/overlay.md): derived from the
 * loomd's mark and the network id, so a gateway veth made again (a repair) answers with the
 * MAC the containers' neighbour caches already hold. Locally administered, unicast.
 */
export function gatewayMacFor(mark: string, networkId: string): string {
  const b = createHash('sha256').update(`${mark}|${networkId}|gateway`).digest().subarray(0, 6);
  b[0] = ((b[0] as number) & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
