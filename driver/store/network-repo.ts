/** Network and endpoint records in the key-value store (layout in schema.ts). */
import type { BridgeSnapshot, EndpointRecord, NetworkRecord } from '../model/types';
import { KvOp, KvStore } from '../../lib/kv';

const NET = 'net/';
const EP = 'ep/';
/** A borrowed bridge's state before loom changed it, while its network is being created. */
const BORROW = 'borrow/';
const epKey = (networkId: string, endpointId: string): string => `${EP}${networkId}/${endpointId}`;

export class NetworkRepository {
  constructor(private readonly kv: KvStore) {}

  async loadAll(): Promise<{ networks: NetworkRecord[]; endpoints: EndpointRecord[] }> {
    const networks = (await this.kv.list<NetworkRecord>(NET)).map((e) => e.value);
    const endpoints = (await this.kv.list<EndpointRecord>(EP)).map((e) => e.value);
    return { networks, endpoints };
  }

  /** Stores a network; a borrowed bridge's snapshot moves from its pending key into the record. */
  async putNetwork(n: NetworkRecord): Promise<void> {
    const ops: KvOp[] = [{ type: 'put', key: NET + n.id, value: n }];
    if (n.borrowed) ops.push({ type: 'del', key: BORROW + n.bridge });
    await this.kv.batch(ops);
  }

  async getPendingBorrow(bridge: string): Promise<BridgeSnapshot | undefined> {
    return this.kv.get<BridgeSnapshot>(BORROW + bridge);
  }

  async putPendingBorrow(bridge: string, before: BridgeSnapshot): Promise<void> {
    await this.kv.batch([{ type: 'put', key: BORROW + bridge, value: before }]);
  }

  async deletePendingBorrow(bridge: string): Promise<void> {
    await this.kv.batch([{ type: 'del', key: BORROW + bridge }]);
  }

  /** Deletes the network and whatever endpoint records it still had, atomically. */
  async deleteNetwork(networkId: string, endpointIds: string[]): Promise<void> {
    const ops: KvOp[] = endpointIds.map((id) => ({ type: 'del', key: epKey(networkId, id) }));
    ops.push({ type: 'del', key: NET + networkId });
    await this.kv.batch(ops);
  }

  async putEndpoint(e: EndpointRecord): Promise<void> {
    await this.kv.batch([{ type: 'put', key: epKey(e.networkId, e.id), value: e }]);
  }

  /**
   * Records a change of an existing endpoint's sandbox (Join, Leave) without waiting for the
   * disk: it survives loomd being killed; a power cut ends every sandbox with the host, so
   * a sandbox key lost with it was moot (the containers join again after the reboot).
   */
  async putEndpointSandbox(e: EndpointRecord): Promise<void> {
    await this.kv.batch([{ type: 'put', key: epKey(e.networkId, e.id), value: e }], { sync: false });
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    await this.kv.batch([{ type: 'del', key: epKey(networkId, endpointId) }]);
  }
}
