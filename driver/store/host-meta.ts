/** Facts about this host that must stay stable across restarts (the ULA prefix for automatic IPv6 subnets). */
import { randomBytes } from 'node:crypto';
import { KvStore } from '../../lib/kv';

export interface HostMeta {
  /** A random RFC 4193 /48, chosen once: automatic IPv6 subnets are /64s of it. */
  ula: string;
  /** This host's identity in a loom cluster (random, chosen once). */
  hostId?: string;
  createdAt: string;
}

const KEY = 'meta/host';

export function randomUla(): string {
  const b = randomBytes(5);
  const groups = [0xfd00 | (b[0] as number), ((b[1] as number) << 8) | (b[2] as number), ((b[3] as number) << 8) | (b[4] as number)];
  return `${groups.map((g) => g.toString(16)).join(':')}::/48`;
}

export async function ensureHostMeta(kv: KvStore): Promise<Required<HostMeta>> {
  const existing = await kv.get<HostMeta>(KEY);
  if (existing?.hostId) return existing as Required<HostMeta>;
  const meta: Required<HostMeta> = {
    ula: existing?.ula ?? randomUla(),
    hostId: randomBytes(6).toString('hex'),
    createdAt: existing?.createdAt ?? new Date().toISOString(),
  };
  await kv.batch([{ type: 'put', key: KEY, value: meta }]);
  return meta;
}
