import type { PublishedPort } from './port-map';
import type { Rates } from './rates';

/**
 * loom's own domain types (camelCase), converted from Docker's wire shapes at
 * the edge. These are also the records persisted in the store (schema v1).
 */

/** One IPAM pool as Docker handed it to CreateNetwork. */
export interface IpamData {
  /** "198.18.10.0/24" */
  pool: string;
  /** "198.18.10.1/24" (CIDR with the pool's length), absent when no gateway was allocated. */
  gateway?: string;
  /** name -> "198.18.10.5/24" */
  aux: Record<string, string>;
}

/** Everything loom needs to (re)build a network, derived once from CreateNetwork. */
export interface NetworkRecord {
  id: string;
  /** Linux bridge name (loom's derived name or com.docker.network.bridge.name). */
  bridge: string;
  /** true when the bridge existed before the network and is not loom's (kept, not deleted, on removal). */
  adoptedBridge?: boolean;
  /** The borrowed bridge as loom found it, given back on removal (absent in records of older looms). */
  borrowed?: BridgeSnapshot;
  mtu: number;
  internal: boolean;
  /** com.docker.network.bridge.enable_icc (default true). */
  icc: boolean;
  /** com.docker.network.bridge.enable_ip_masquerade (default true). */
  masquerade: boolean;
  /** com.docker.network.bridge.host_binding_ipv4 (default 0.0.0.0). */
  hostBinding?: string;
  /** Overlay networks only: the cluster-wide overlay this network is this host's instance of. */
  overlay?: OverlayAttachment;
  /** Default bandwidth limits of the network's endpoints (-o loom.egress_rate / loom.ingress_rate). */
  rates?: Rates;
  /**
   * `docker` (-o loom.gateway=docker): Docker's docker_gwbridge gives the containers their default
   * route, outside connectivity and published ports; loom's network carries only the traffic
   * between its containers (no gateway in Join, no NAT, no DNAT, nothing forwarded beyond the
   * bridge). Absent: loom does all of that itself.
   */
  gatewayService?: 'docker';
  enableIpv6: boolean;
  ipv4: IpamData[];
  ipv6: IpamData[];
  /** The -o options exactly as given (for idempotency checks and operators). */
  options: Record<string, string>;
  createdAt: string;
}

/**
 * What a borrowed bridge (one that existed before its network and carries no loom mark) was
 * like before loom's first change: everything loom may change on it.
 */
export interface BridgeSnapshot {
  mtu: number;
  up: boolean;
  /** Per-interface sysctls loom writes ("ipv6.disable_ipv6" -> "0"), as read before; absent keys did not exist. */
  sysctls: Record<string, string>;
  /** Addresses it held (CIDR), IPv6 link-local ones aside (the kernel makes those). */
  addresses: string[];
  takenAt: string;
}

export interface OverlayAttachment {
  /** Cluster-wide key (loom.overlay, or the creating host's network id). */
  key: string;
  vni: number;
  /** This host's VXLAN device, attached to the network's bridge. */
  vxlan: string;
  /** This host's VTEP address. */
  local: string;
  /** The host that created the overlay (it deletes it cluster-wide when it removes the network). */
  origin: string;
  /**
   * The network's own namespace (docs/overlay.md, "The data plane on each host"): the bridge
   * (`NetworkRecord.bridge`) and the endpoints' host ends live there; the VXLAN device stays in
   * the host's namespace, tied to `tunnelIf` by tc mirred; `gatewayIf` holds the gateway
   * addresses in the host's namespace. Absent in records of older looms (bridge and VXLAN
   * device in the host's namespace).
   */
  ns?: OverlayNsLayout;
}

/** An overlay network's namespace and the veth pairs that connect it to the host's namespace. */
export interface OverlayNsLayout {
  /** Name under /run/netns (`loom-<instance>-<id>`): this loomd's, never another's. */
  netns: string;
  /** Host end of the gateway veth: the gateway address(es), routing, NAT, firewall. */
  gatewayIf: string;
  /** Its namespace end, a port of the bridge. */
  gatewayPeer: string;
  /** Host end of the tunnel veth, redirected to and from the VXLAN device. */
  tunnelIf: string;
  /** Its namespace end, a port of the bridge. */
  tunnelPeer: string;
}

export interface EndpointRecord {
  networkId: string;
  id: string;
  /** Host end of the veth pair, attached to the bridge. */
  hostIf: string;
  /** Container end: Docker moves it into the sandbox and renames it ethN. */
  peerIf: string;
  mac: string;
  /** true when Docker supplied the MAC (then loom must not return one). */
  macFromDocker: boolean;
  /** "198.18.10.7/24" or absent */
  address?: string;
  addressV6?: string;
  /** Per-endpoint driver options (driver-opt), only sent in CreateEndpoint. */
  options: Record<string, string>;
  /** Sandbox path while joined. */
  sandboxKey?: string;
  /** Effective bandwidth limits (endpoint driver-opts over network defaults), bits/s. */
  rates?: Rates;
  /** IFB device shaping what the container sends (present when rates.egressBps is set). */
  ifb?: string;
  /** Host ports forwarded to this endpoint (ProgramExternalConnectivity). */
  ports?: PublishedPort[];
  /**
   * Overlay endpoints while joined: the names Docker resolves the container by on this network
   * (container name, --network-alias aliases, short id, hostname), lowercased; learned from the
   * Docker API after Join (driver/dns/), published with the endpoint in etcd, cleared on Leave.
   */
  dnsNames?: string[];
  createdAt: string;
}

/** What Join answers. */
export interface JoinInfo {
  srcName: string;
  gateway?: string;
  gatewayV6?: string;
  /** true: Docker gives the container its default route and ports through docker_gwbridge (loom.gateway=docker). */
  dockerGateway: boolean;
}
