/**
 * Thin handlers for the NetworkDriver calls, grouped by family. Each converts Docker's wire
 * body into domain input (convert.ts), calls a service and shapes the reply, whose type is
 * declared beside the request schema in wire.ts.
 */
import { Route, route } from '../../lib/http-route';
import type { EndpointService } from '../network/endpoint-service';
import type { NetworkService } from '../network/network-service';
import { parseNetworkSettings } from '../model/options';
import type { PortPublisher } from '../ports/port-publisher';
import { ENABLE_IPV6, INTERNAL, driverOptions, flag, genericOptions, toIpamData } from './convert';
import { staticAnswers } from './static-answers';
import {
  ActivateReply,
  AllocateNetworkReply,
  AllocateNetworkRequest,
  CreateEndpointReply,
  CreateEndpointRequest,
  CreateNetworkRequest,
  DiscoveryRequest,
  EmptyReply,
  EndpointOperInfoReply,
  EndpointRequest,
  GwAllocCheckReply,
  GwAllocCheckRequest,
  JoinReply,
  JoinRequest,
  NetworkCapabilitiesReply,
  NetworkIdRequest,
  ProgramExternalConnectivityRequest,
} from './wire';

/** The services the NetworkDriver calls reach. */
export interface NetworkDriverServices {
  networks: NetworkService;
  endpoints: EndpointService;
  ports: PortPublisher;
}

const EMPTY: EmptyReply = {};

/** `scope`: what GetCapabilities answers ("global" for Swarm, --scope). */
export function networkRoutes(s: NetworkDriverServices, scope: 'local' | 'global' = 'local'): Route[] {
  const ids = (b: { NetworkID: string; EndpointID?: string }): Record<string, string | undefined> => ({ networkId: b.NetworkID, endpointId: b.EndpointID });
  return [
    // capabilities
    route({
      method: 'NetworkDriver.GetCapabilities',
      handle: async (): Promise<NetworkCapabilitiesReply> => staticAnswers(scope)['NetworkDriver.GetCapabilities'],
    }),
    route({
      method: 'NetworkDriver.GwAllocCheck',
      schema: GwAllocCheckRequest,
      // loom puts the gateway on its bridge for every family, so Docker must always reserve one;
      // the options are validated here already, so a bad -o fails before any IPAM work.
      handle: async (b): Promise<GwAllocCheckReply> => {
        parseNetworkSettings(genericOptions(b.Options), { internal: flag(b.Options, INTERNAL) });
        return { SkipIPv4: false, SkipIPv6: false };
      },
    }),
    // networks
    route({
      method: 'NetworkDriver.CreateNetwork',
      schema: CreateNetworkRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.networks.createNetwork({
          id: b.NetworkID,
          options: genericOptions(b.Options),
          enableIpv6: flag(b.Options, ENABLE_IPV6),
          internal: flag(b.Options, INTERNAL),
          ipv4: b.IPv4Data.map(toIpamData),
          ipv6: b.IPv6Data.map(toIpamData),
        });
        return EMPTY;
      },
    }),
    route({
      method: 'NetworkDriver.DeleteNetwork',
      schema: NetworkIdRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.networks.deleteNetwork(b.NetworkID);
        return EMPTY;
      },
    }),
    route({
      method: 'NetworkDriver.AllocateNetwork',
      schema: AllocateNetworkRequest,
      ids,
      // Swarm managers only, for global-scope drivers: workers receive these options in CreateNetwork.
      handle: async (b): Promise<AllocateNetworkReply> => ({
        Options: await s.networks.allocateNetwork({ id: b.NetworkID, options: b.Options, ipv4: b.IPv4Data.map(toIpamData), ipv6: b.IPv6Data.map(toIpamData) }),
      }),
    }),
    route({
      method: 'NetworkDriver.FreeNetwork',
      schema: NetworkIdRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.networks.freeNetwork(b.NetworkID);
        return EMPTY;
      },
    }),
    // endpoints
    route({
      method: 'NetworkDriver.CreateEndpoint',
      schema: CreateEndpointRequest,
      ids,
      handle: async (b): Promise<CreateEndpointReply> => {
        const r = await s.endpoints.createEndpoint({
          networkId: b.NetworkID,
          id: b.EndpointID,
          address: b.Interface.Address,
          addressV6: b.Interface.AddressIPv6,
          mac: b.Interface.MacAddress,
          options: driverOptions(b.Options),
        });
        // Never echo Address/AddressIPv6: Docker refuses any field it already set.
        return r.mac ? { Interface: { MacAddress: r.mac } } : {};
      },
    }),
    route({
      method: 'NetworkDriver.DeleteEndpoint',
      schema: EndpointRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.endpoints.deleteEndpoint(b.NetworkID, b.EndpointID);
        return EMPTY;
      },
    }),
    route({
      method: 'NetworkDriver.EndpointOperInfo',
      schema: EndpointRequest,
      ids,
      handle: async (): Promise<EndpointOperInfoReply> => ({ Value: {} }),
    }),
    // join / leave
    route({
      method: 'NetworkDriver.Join',
      schema: JoinRequest,
      ids,
      handle: async (b): Promise<JoinReply> => {
        const j = await s.endpoints.join(b.NetworkID, b.EndpointID, b.SandboxKey);
        return {
          InterfaceName: { SrcName: j.srcName, DstPrefix: 'eth' },
          ...(j.gateway ? { Gateway: j.gateway } : {}),
          ...(j.gatewayV6 ? { GatewayIPv6: j.gatewayV6 } : {}),
          StaticRoutes: [],
          // loom provides the gateway and outside connectivity itself (never docker_gwbridge),
          // unless the network leaves them to Docker (loom.gateway=docker): with no gateway and
          // this false, Docker attaches the container to docker_gwbridge and publishes its ports there.
          DisableGatewayService: !j.dockerGateway,
        };
      },
    }),
    route({
      method: 'NetworkDriver.Leave',
      schema: EndpointRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.endpoints.leave(b.NetworkID, b.EndpointID);
        return EMPTY;
      },
    }),
    // external connectivity
    route({
      method: 'NetworkDriver.ProgramExternalConnectivity',
      schema: ProgramExternalConnectivityRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.ports.program(b.NetworkID, b.EndpointID, b.Options);
        return EMPTY;
      },
    }),
    route({
      method: 'NetworkDriver.RevokeExternalConnectivity',
      schema: EndpointRequest,
      ids,
      handle: async (b): Promise<EmptyReply> => {
        await s.ports.revoke(b.NetworkID, b.EndpointID);
        return EMPTY;
      },
    }),
    // discovery (swarm gossip; loom finds its peers through its own cluster store)
    route({ method: 'NetworkDriver.DiscoverNew', schema: DiscoveryRequest, handle: async (): Promise<EmptyReply> => EMPTY }),
    route({ method: 'NetworkDriver.DiscoverDelete', schema: DiscoveryRequest, handle: async (): Promise<EmptyReply> => EMPTY }),
  ];
}

/** /Plugin.Activate: the subsystems loom serves (legacy plugins only). */
export const activateRoute: Route = route({
  method: 'Plugin.Activate',
  handle: async (): Promise<ActivateReply> => staticAnswers('local')['Plugin.Activate'],
});
