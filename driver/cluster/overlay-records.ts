/**
 * Overlay records in etcd: creating (with a fresh VNI) or joining an overlay, and deleting
 * everything an overlay holds when its origin removes it. Key layout: lib/cluster/store.ts.
 */
import { randomInt } from 'node:crypto';
import { conflict, unavailable } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { ClusterUnavailableError, isClusterUnavailable } from '../../lib/cluster/health';
import type { GuardedStore } from '../../lib/cluster/guarded-store';
import { keys } from '../../lib/cluster/store';
import type { OverlayRecord } from './records';

const VNI_MIN = 4096;
const VNI_MAX = 16_000_000;

/**
 * Creates the overlay `key` in etcd (with a fresh VNI) or joins the existing one. Joining
 * checks that the subnets match; a different overlay with the same key is a conflict.
 */
export async function registerOverlay(store: GuardedStore, proposal: Omit<OverlayRecord, 'vni' | 'createdAt'>): Promise<OverlayRecord> {
  try {
    const existing = await store.get<OverlayRecord>(keys.overlay(proposal.key));
    if (existing) {
      const a = existing.value.ipv4.map((s) => s.pool).join(',');
      const b = proposal.ipv4.map((s) => s.pool).join(',');
      if (a !== b) throw conflict(`overlay ${proposal.key} exists with subnets ${a}; this network has ${b}`);
      return existing.value;
    }
    for (let attempt = 0; attempt < 32; attempt++) {
      const vni = randomInt(VNI_MIN, VNI_MAX);
      if (!(await store.create(keys.vni(vni), { overlay: proposal.key }))) continue;
      const rec: OverlayRecord = { ...proposal, vni, createdAt: new Date().toISOString() };
      if (await store.create(keys.overlay(proposal.key), rec)) return rec;
      await store.delete(keys.vni(vni));
      return registerOverlay(store, proposal);
    }
    throw unavailable('could not allocate a VNI');
  } catch (err) {
    if (isClusterUnavailable(err)) throw new ClusterUnavailableError(`overlay ${proposal.key} needs the cluster store (etcd), which is unreachable: ${err.message}`);
    if (err instanceof Error && 'kind' in err) throw err;
    throw unavailable(`overlay networks need the cluster store, which is unreachable: ${(err as Error).message}`);
  }
}

/** Deletes an overlay's record, VNI, subnet claims, blocks, reservations, loans and detached marks. */
export async function deleteOverlayKeys(store: GuardedStore, rec: OverlayRecord, log: Logger): Promise<void> {
  for (const s of [...rec.ipv4, ...rec.ipv6]) {
    for (const kv of await store.list(keys.blocksOf(s.pool))) await store.delete(kv.key);
    for (const kv of await store.list(keys.reservationsOf(s.pool))) await store.delete(kv.key);
    for (const kv of await store.list(keys.loanRequestsOf(s.pool))) await store.delete(kv.key);
    await store.delete(keys.pool(s.pool));
  }
  for (const kv of await store.list(`/loom/v1/detached/${rec.key}/`)) await store.delete(kv.key);
  await store.delete(keys.vni(rec.vni));
  await store.delete(keys.overlay(rec.key));
  log.info({ overlay: rec.key }, 'overlay deleted in the cluster store');
}
