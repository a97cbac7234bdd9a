/**
 * IPAM records in the key-value store. Key layout (schema v1, see docs/state.md):
 *   ipam/pool/<poolId>              -> PoolRecord
 *   ipam/addr/<poolId>|<address>    -> AllocationRecord   (address without prefix length)
 * The allocations are the facts; bitmaps/interval sets are rebuilt from them.
 */
import { KvOp, KvStore } from '../lib/kv';

/**
 * gateway: RequestAddressType gateway; explicit: a requested address (--ip, --gateway,
 * --aux-address); dynamic: next-fit; foreign: inside this host's block of a shared pool,
 * granted to another host (its static address, or lent: `lent`), not this host's to hand
 * out; borrowed: a dynamic address lent to this host by the owner of another host's block
 * (`peer`); quarantine: released from a shared pool, kept out of use until `until` (other
 * hosts may still hold forwarding entries for it).
 */
export type AllocationKind = 'gateway' | 'explicit' | 'dynamic' | 'foreign' | 'borrowed' | 'quarantine';

export interface PoolRecord {
  id: string;
  addressSpace: string;
  pool: string;
  subPool?: string;
  v6: boolean;
  options: Record<string, string>;
  /** Identical requests that share this pool (swarm re-allocation); released at zero. */
  refs: number;
  /** true when loom chose the subnet (no --subnet). */
  auto: boolean;
  /** In a cluster: the overlay whose subnet this pool shares with other hosts. */
  shared?: string;
  /** For a shared pool: the blocks (CIDR) this host claimed and allocates from. */
  blocks?: string[];
  /** In a cluster: the pool's block length as recorded with its cluster claim (absent: legacy /26, /116). */
  blockLen?: number;
  /** Next-fit cursor: the last address handed out, as a decimal bigint ("-1" before the first). */
  cursor: string;
  createdAt: string;
}

export interface AllocationRecord {
  poolId: string;
  address: string;
  kind: AllocationKind;
  createdAt: string;
  /** quarantine only: when the address may be handed out again. */
  until?: string;
  /** foreign: the host holding the address; borrowed: the host that lent it. */
  peer?: string;
  /** foreign only: lent to a borrower (quarantined here when given back). */
  lent?: boolean;
}

const POOL = 'ipam/pool/';
const ADDR = 'ipam/addr/';
const addrKey = (poolId: string, address: string): string => `${ADDR}${poolId}|${address}`;

export class IpamRepository {
  constructor(private readonly kv: KvStore) {}

  async loadAll(): Promise<{ pools: PoolRecord[]; allocations: AllocationRecord[] }> {
    const pools = (await this.kv.list<PoolRecord>(POOL)).map((e) => e.value);
    const allocations = (await this.kv.list<AllocationRecord>(ADDR)).map((e) => e.value);
    return { pools, allocations };
  }

  async putPool(record: PoolRecord): Promise<void> {
    await this.kv.batch([{ type: 'put', key: POOL + record.id, value: record }]);
  }

  async deletePool(poolId: string, addresses: string[]): Promise<void> {
    const ops: KvOp[] = addresses.map((a) => ({ type: 'del', key: addrKey(poolId, a) }));
    ops.push({ type: 'del', key: POOL + poolId });
    await this.kv.batch(ops);
  }

  /** Stores an allocation, and the pool's new cursor in the same batch when it moved. */
  async putAllocation(record: AllocationRecord, pool?: PoolRecord): Promise<void> {
    const ops: KvOp[] = [{ type: 'put', key: addrKey(record.poolId, record.address), value: record }];
    if (pool) ops.push({ type: 'put', key: POOL + pool.id, value: pool });
    await this.kv.batch(ops);
  }

  async deleteAllocation(poolId: string, address: string): Promise<void> {
    await this.kv.batch([{ type: 'del', key: addrKey(poolId, address) }]);
  }
}
