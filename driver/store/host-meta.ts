/**
 * Facts about this host that must stay stable across restarts: the ULA prefix for automatic
 * IPv6 subnets and this loomd's identity (its cluster host id, and the owner mark on every
 * kernel object it makes). They live in the store (`meta/host`) and, since a store rebuilt
 * from Docker's view after damage must keep them (or loomd would no longer know its own
 * links, rules and cluster keys), also in `identity.json` beside it, written durably once.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { KvStore } from '../../lib/kv';
import { writeFileDurably } from './durable-file';

export interface HostMeta {
  /** A random RFC 4193 /48, chosen once: automatic IPv6 subnets are /64s of it. */
  ula: string;
  /** This host's identity in a loom cluster and its owner mark (random, chosen once). */
  hostId?: string;
  createdAt: string;
}

const KEY = 'meta/host';

export function randomUla(): string {
  const b = randomBytes(5);
  const groups = [0xfd00 | (b[0] as number), ((b[1] as number) << 8) | (b[2] as number), ((b[3] as number) << 8) | (b[4] as number)];
  return `${groups.map((g) => g.toString(16)).join(':')}::/48`;
}

function readIdentity(file: string | undefined): Required<HostMeta> | undefined {
  if (!file) return undefined;
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<HostMeta>;
    if (typeof v.hostId === 'string' && /^[0-9a-f]{12}$/.test(v.hostId) && typeof v.ula === 'string') {
      return { hostId: v.hostId, ula: v.ula, createdAt: v.createdAt ?? new Date().toISOString() };
    }
  } catch {
    // absent or unreadable: the store's copy (or a new identity) is used and written again
  }
  return undefined;
}

/** This host's facts: from the store, else from `identityFile` (a rebuilt store), else new. */
export async function ensureHostMeta(kv: KvStore, identityFile?: string): Promise<Required<HostMeta>> {
  const stored = await kv.get<HostMeta>(KEY);
  const saved = readIdentity(identityFile);
  let meta: Required<HostMeta>;
  if (stored?.hostId) meta = stored as Required<HostMeta>;
  else if (saved) meta = saved;
  else meta = { ula: stored?.ula ?? randomUla(), hostId: randomBytes(6).toString('hex'), createdAt: stored?.createdAt ?? new Date().toISOString() };
  if (!stored?.hostId) await kv.batch([{ type: 'put', key: KEY, value: meta }]);
  if (identityFile && (saved?.hostId !== meta.hostId || saved?.ula !== meta.ula)) writeFileDurably(identityFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}
