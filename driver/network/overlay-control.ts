/**
 * What the network service needs from the cluster for overlay networks (implemented
 * by driver/cluster/coordinator.ts; absent on a single host). Kept as an interface so
 * the network service does not depend on etcd.
 */
import type { EndpointRecord, IpamData, NetworkRecord, OverlayAttachment } from '../model/types';
import type { NetworkSettings } from '../model/options';

export interface OverlayControl {
  /** CreateNetwork of an overlay: registers (or joins) the overlay cluster-wide. */
  attach(record: NetworkRecord, settings: NetworkSettings): Promise<{ attachment: OverlayAttachment; mtu: number; created: boolean }>;
  /** Undoes `attach` when a later step of CreateNetwork failed. */
  abandon(record: NetworkRecord, created: boolean): Promise<void>;
  /** The overlay network is built and stored on this host. */
  attached(record: NetworkRecord): Promise<void>;
  /** The overlay network is gone from this host. */
  detached(record: NetworkRecord): Promise<void>;
  /** A bridge network in a cluster: refuses an overlay's subnet, then records its subnets as this host's. */
  checkLocal(record: NetworkRecord): Promise<void>;
  localCreated(record: NetworkRecord): Promise<void>;
  /** Swarm manager (AllocateNetwork): registers the overlay for the whole swarm; returns its key. */
  allocateSwarm(networkId: string, settings: NetworkSettings, ipv4: IpamData[], ipv6: IpamData[], options: Record<string, string>): Promise<string>;
  /** Swarm manager (FreeNetwork): the swarm network is gone. */
  freeSwarm(networkId: string): Promise<void>;
  endpointUp(record: NetworkRecord, ep: EndpointRecord): void;
  endpointDown(record: NetworkRecord, ep: EndpointRecord): void;
}
