/**
 * The records loom keeps in etcd under /loom/v1/ (layout in store.ts and docs/overlay.md),
 * as this host reads them back through its watches.
 */

export interface HostRecord {
  hostId: string;
  vtep: string;
  underlayMtu: number;
  version: string;
  startedAt: string;
}

export interface OverlaySubnet {
  pool: string;
  gateway?: string;
  aux: Record<string, string>;
}

export interface OverlayRecord {
  key: string;
  vni: number;
  /** Docker network name on the host that created it (filled in asynchronously). */
  name?: string;
  origin: string;
  mtu: number;
  ipv4: OverlaySubnet[];
  ipv6: OverlaySubnet[];
  enableIpv6: boolean;
  internal: boolean;
  /** The -o options as given on the origin (repeated when loom creates the network elsewhere). */
  options: Record<string, string>;
  /** Swarm network id when Swarm manages the overlay's life (AllocateNetwork/FreeNetwork). */
  swarmId?: string;
  createdAt: string;
}

export interface RemoteEndpoint {
  overlay: string;
  host: string;
  endpointId: string;
  mac: string;
  ip?: string;
  ip6?: string;
  vtep: string;
  /** DNS names of the container on the overlay (lowercase; absent until its host learned them from Docker). */
  names?: string[];
  /** The container's labels (network policy; absent until its host learned them from Docker). */
  labels?: Record<string, string>;
}

/** A subnet claim as last seen in etcd (the IPAM's PoolClaim, kept here by the watch). */
export interface ClaimRecord {
  subnet: string;
  kind: 'pending' | 'local' | 'overlay';
  host: string;
  overlay?: string;
  at: string;
}
