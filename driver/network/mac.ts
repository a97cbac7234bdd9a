/** MAC addresses: random locally administered unicast, and validation of Docker's readable form. */
import { randomBytes } from 'node:crypto';

/** A random locally administered (bit 1 set), unicast (bit 0 clear) MAC, never derived from the IP. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] as number) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
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
