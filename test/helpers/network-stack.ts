/**
 * The network side of loomd (driver/network/stack.ts) behind one object with the verbs the
 * kernel tier's tests drive: a real data plane and firewall, an in-memory or given store.
 */
import type { DataPlane } from '../../driver/dataplane/bridge';
import type { StepRunner } from '../../driver/dataplane/steps';
import type { Firewall } from '../../driver/firewall/model';
import type { NetworkRecord } from '../../driver/model/types';
import { NetworkStack, createNetworkStack } from '../../driver/network/stack';
import { NetworkRepository } from '../../driver/store/network-repo';
import type { Logger } from '../../lib/logger';
import { KvStore, MemoryKv } from '../../lib/kv';

export interface TestNetworks extends NetworkStack {
  createNetwork: NetworkStack['networks']['createNetwork'];
  deleteNetwork: NetworkStack['networks']['deleteNetwork'];
  createEndpoint: NetworkStack['endpoints']['createEndpoint'];
  deleteEndpoint: NetworkStack['endpoints']['deleteEndpoint'];
  join: NetworkStack['endpoints']['join'];
  list: NetworkStack['table']['list'];
  get: NetworkStack['table']['get'];
  load: NetworkStack['table']['load'];
  withNetworkLock: NetworkStack['table']['withNetworkLock'];
  /** Re-creates what the kernel lost (takes no lock, as the reconciler's locked repair does inside it). */
  restoreNetwork(record: NetworkRecord, steps: StepRunner): Promise<void>;
}

export function testNetworks(dataplane: DataPlane, firewall: Firewall, log: Logger, kv: KvStore = new MemoryKv()): TestNetworks {
  const s = createNetworkStack({ repo: new NetworkRepository(kv), dataplane, firewall, log });
  return {
    ...s,
    createNetwork: (i) => s.networks.createNetwork(i),
    deleteNetwork: (id) => s.networks.deleteNetwork(id),
    createEndpoint: (i) => s.endpoints.createEndpoint(i),
    deleteEndpoint: (n, e) => s.endpoints.deleteEndpoint(n, e),
    join: (n, e, k) => s.endpoints.join(n, e, k),
    list: () => s.table.list(),
    get: (id) => s.table.get(id),
    load: () => s.table.load(),
    withNetworkLock: (id, fn) => s.table.withNetworkLock(id, fn),
    restoreNetwork: (record, steps) => s.repairs.restoreNetworkLocked(record, steps),
  };
}
