/**
 * Wire schemas of Docker's remote NetworkDriver API (PascalCase, exactly as
 * dockerd 20.10 - 29 sends them; recorded bodies in test/fixtures). Parsed at the
 * HTTP edge; handlers convert them to loom's domain types at once.
 */
import { z } from 'zod/v3';
import { ID_PATTERN } from '../model/naming';

const id = z.string().regex(ID_PATTERN, 'must be 1-128 letters and digits');
/** Docker option maps: values may be strings, booleans, arrays or objects; `null` is an empty map. */
const anyMap = z
  .record(z.string().max(256), z.unknown())
  .nullish()
  .transform((v) => v ?? {});
const stringMap = z
  .record(z.string().max(256), z.string().max(4096))
  .nullish()
  .transform((v) => v ?? {});

/** One IPAM pool handed to CreateNetwork / AllocateNetwork. */
export const IpamData = z.object({
  /** Address space the IPAM answered from GetDefaultAddressSpaces ("" in swarm AllocateNetwork). */
  AddressSpace: z.string().max(64).optional(),
  /** Subnet in CIDR form. */
  Pool: z.string().min(1).max(64),
  /** Gateway in CIDR form with the pool's length ("198.18.10.1/24"); absent when none was allocated. */
  Gateway: z.string().max(64).optional(),
  /** name -> CIDR */
  AuxAddresses: stringMap,
});
const ipamList = z
  .array(IpamData)
  .max(64)
  .nullish()
  .transform((v) => v ?? []);

/** /NetworkDriver.CreateNetwork */
export const CreateNetworkRequest = z.object({
  NetworkID: id,
  /** com.docker.network.generic (the -o map), enable_ipv4/6, internal... */
  Options: anyMap,
  IPv4Data: ipamList,
  IPv6Data: ipamList,
});

/** /NetworkDriver.DeleteNetwork, /NetworkDriver.FreeNetwork */
export const NetworkIdRequest = z.object({ NetworkID: id });

/** /NetworkDriver.AllocateNetwork (swarm manager) */
export const AllocateNetworkRequest = z.object({
  NetworkID: id,
  Options: stringMap,
  IPv4Data: ipamList,
  IPv6Data: ipamList,
});

/** /NetworkDriver.CreateEndpoint */
export const CreateEndpointRequest = z.object({
  NetworkID: id,
  EndpointID: id,
  /** IPAM addresses in CIDR form, "" when unset; MacAddress set only by --mac-address. */
  Interface: z
    .object({
      Address: z.string().max(64).default(''),
      AddressIPv6: z.string().max(64).default(''),
      MacAddress: z.string().max(64).default(''),
    })
    .nullish()
    .transform((v) => v ?? { Address: '', AddressIPv6: '', MacAddress: '' }),
  /** driver-opt values (strings) plus Docker's portmap/exposedports arrays. */
  Options: anyMap,
});

/** /NetworkDriver.DeleteEndpoint, EndpointOperInfo, Leave, RevokeExternalConnectivity */
export const EndpointRequest = z.object({ NetworkID: id, EndpointID: id });

/** /NetworkDriver.Join */
export const JoinRequest = z.object({
  NetworkID: id,
  EndpointID: id,
  /** Path of the container's netns bind mount. */
  SandboxKey: z.string().max(4096).default(''),
  /** The sandbox's labels (port map, exposed ports), identical for every network. */
  Options: anyMap,
});

/** /NetworkDriver.ProgramExternalConnectivity */
export const ProgramExternalConnectivityRequest = z.object({ NetworkID: id, EndpointID: id, Options: anyMap });

/** /NetworkDriver.DiscoverNew, DiscoverDelete */
export const DiscoveryRequest = z.object({
  DiscoveryType: z.number().int(),
  DiscoveryData: z.unknown().optional(),
});

/** /NetworkDriver.GwAllocCheck (Docker 28+, only if advertised) */
export const GwAllocCheckRequest = z.object({ Options: anyMap });

// ---- replies (what Docker reads; moby drivers/remote/api/api.go) ---------------------------

/** An empty reply: the call succeeded and Docker reads nothing else. */
export type EmptyReply = Record<string, never>;

/** /Plugin.Activate */
export interface ActivateReply {
  Implements: string[];
}

/** /NetworkDriver.GetCapabilities */
export interface NetworkCapabilitiesReply {
  Scope: 'local' | 'global';
  ConnectivityScope: 'local' | 'global';
  /** Docker 28+: ask GwAllocCheck before CreateNetwork. */
  GwAllocChecker: boolean;
}

/** /NetworkDriver.GwAllocCheck: whether Docker may skip reserving a gateway per family. */
export interface GwAllocCheckReply {
  SkipIPv4: boolean;
  SkipIPv6: boolean;
}

/** /NetworkDriver.AllocateNetwork: the options every swarm worker receives in CreateNetwork. */
export interface AllocateNetworkReply {
  Options: Record<string, string>;
}

/** /NetworkDriver.CreateEndpoint: only what Docker did not set (never the addresses). */
export interface CreateEndpointReply {
  Interface?: { MacAddress: string };
}

/** /NetworkDriver.EndpointOperInfo */
export interface EndpointOperInfoReply {
  Value: Record<string, unknown>;
}

/** /NetworkDriver.Join */
export interface JoinReply {
  /** The interface Docker moves into the sandbox, and the prefix of its name there (eth). */
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes: Array<{ Destination: string; RouteType: number; NextHop?: string }>;
  /**
   * true: loom gives the container its gateway and outside connectivity itself (no docker_gwbridge).
   * false only with no Gateway/GatewayIPv6 (loom.gateway=docker): Docker then attaches docker_gwbridge.
   */
  DisableGatewayService: boolean;
}
