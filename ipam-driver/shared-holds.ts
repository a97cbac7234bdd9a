/**
 * The two allocation kinds only shared (overlay) pools have, kept in the address book like
 * any allocation: `foreign` (an address of this host's block held for another host, which
 * this host must not hand out) and `quarantine` (an address given back, kept out of use a
 * while: other hosts may still hold forwarding entries for it). Callers hold the pool's lock.
 */
import { parseIpMaybeCidr } from '../lib/prefix';
import type { AddressBook, LivePool } from './address-book';
import type { AllocationRecord } from './ipam-store';

/** How long a released address of a shared (overlay) pool stays out of use. */
export const QUARANTINE_MS = 30_000;

/**
 * Marks `ip` of this host's block as held by host `peer` (`lent`: a loan, quarantined when
 * given back). `cursor`: the next-fit cursor before the address was taken, so that a moved
 * cursor is stored in the same batch.
 */
export async function holdForeign(book: AddressBook, live: LivePool, ip: string, peer: string, lent: boolean, cursor?: bigint): Promise<void> {
  const v = parseIpMaybeCidr(ip).value;
  if (!live.alloc.isUsed(v)) live.alloc.reserve(v);
  const moved = cursor !== undefined && cursor !== live.alloc.cursor;
  const rec: AllocationRecord = { poolId: live.record.id, address: ip, kind: 'foreign', createdAt: new Date().toISOString(), ...(peer ? { peer } : {}), ...(lent ? { lent } : {}) };
  await book.put(live, rec, moved ? { ...live.record, cursor: live.alloc.cursor.toString() } : undefined);
}

/** Puts an address given back into quarantine (its other-host marks dropped). */
export async function quarantine(book: AddressBook, live: LivePool, rec: AllocationRecord): Promise<void> {
  const { peer: _p, lent: _l, ...rest } = rec;
  await book.put(live, { ...rest, kind: 'quarantine', until: new Date(Date.now() + QUARANTINE_MS).toISOString() });
}

/** Frees the quarantined addresses whose time is up. */
export async function endQuarantines(book: AddressBook, live: LivePool): Promise<void> {
  const now = Date.now();
  for (const a of [...book.held(live.record.id).values()]) {
    if (a.kind === 'quarantine' && Date.parse(a.until ?? '') <= now) await book.free(live, a.address);
  }
}
