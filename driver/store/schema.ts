/**
 * Store schema versioning. Key layout of schema v1 (all values JSON):
 *   meta/schema                   -> { version: 1 }
 *   meta/host                     -> { ula: "fdxx:xxxx:xxxx::/48", createdAt }
 *   meta/commit                   -> { seq, at }   sequence of the last write (level-kv.ts)
 *   net/<networkId>               -> NetworkRecord
 *   ep/<networkId>/<endpointId>   -> EndpointRecord
 *   borrow/<bridge>               -> BridgeSnapshot (while a network borrowing that bridge is created)
 *   ipam/pool/<poolId>            -> PoolRecord
 *   ipam/addr/<poolId>|<address>  -> AllocationRecord
 * docs/state.md explains each record. A store written by a newer loom is refused.
 */
import { LoomError } from '../../lib/errors';
import { KvStore } from '../../lib/kv';

export const SCHEMA_VERSION = 1;
const SCHEMA_KEY = 'meta/schema';

/** Migrations from version N to N+1, applied in order at start-up. */
const MIGRATIONS: Record<number, (kv: KvStore) => Promise<void>> = {};

export async function ensureSchema(kv: KvStore): Promise<void> {
  const meta = await kv.get<{ version: number }>(SCHEMA_KEY);
  if (!meta) {
    await kv.batch([{ type: 'put', key: SCHEMA_KEY, value: { version: SCHEMA_VERSION } }]);
    return;
  }
  if (meta.version > SCHEMA_VERSION) {
    throw new LoomError(
      'unavailable',
      `state was written by a newer loom (schema ${meta.version}, this build reads up to ${SCHEMA_VERSION}); refusing to touch it`,
    );
  }
  for (let v = meta.version; v < SCHEMA_VERSION; v++) {
    const migrate = MIGRATIONS[v];
    if (!migrate) throw new LoomError('internal', `no migration from schema ${v}`);
    await migrate(kv);
    await kv.batch([{ type: 'put', key: SCHEMA_KEY, value: { version: v + 1 } }]);
  }
}
