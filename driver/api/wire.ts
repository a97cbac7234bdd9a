/**
 * Wire schemas of Docker's remote NetworkDriver API (PascalCase, exactly as
 * dockerd 20.10 - 29 sends them; recorded bodies in test/fixtures). Parsed at the
 * HTTP edge; handlers convert them to loom's domain types at once.
 */
import { z } from 'zod';
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
