/**
 * Thin handlers for the NetworkDriver calls, grouped by family. Each converts
 * Docker's wire body into domain input, calls the network service and shapes
 * the reply exactly as Docker expects it.
 */
import { invalid } from '../../lib/errors';
import { staticAnswers } from './static-answers';
import { Route, route } from '../../lib/http-route';
import {
  AllocateNetworkRequest,
  CreateEndpointRequest,
  CreateNetworkRequest,
  DiscoveryRequest,
  EndpointRequest,
  GwAllocCheckRequest,
  JoinRequest,
  NetworkIdRequest,
  ProgramExternalConnectivityRequest,
} from './wire';
import type { NetworkService } from '../network/network-service';
import { parseNetworkSettings } from '../model/options';
import type { IpamData } from '../model/types';

const GENERIC = 'com.docker.network.generic';
const ENABLE_IPV6 = 'com.docker.network.enable_ipv6';
const INTERNAL = 'com.docker.network.internal';

/** Keys Docker itself puts into endpoint options; everything else is a driver-opt. */
const DOCKER_ENDPOINT_KEY = /^com\.docker\.network\./;

function toIpamData(d: { Pool: string; Gateway?: string | undefined; AuxAddresses: Record<string, string> }): IpamData {
  return { pool: d.Pool, ...(d.Gateway ? { gateway: d.Gateway } : {}), aux: d.AuxAddresses };
}

function genericOptions(options: Record<string, unknown>): Record<string, string> {
  const generic = options[GENERIC] ?? {};
  if (typeof generic !== 'object' || generic === null || Array.isArray(generic)) {
    throw invalid(`${GENERIC} must be an object of string options`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(generic)) {
    if (typeof v !== 'string') throw invalid(`network option ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

function flag(options: Record<string, unknown>, key: string): boolean {
  const v = options[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw invalid(`${key} must be a boolean`);
}

/** Per-endpoint driver options: string values whose keys are not Docker's own. */
function driverOptions(options: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (DOCKER_ENDPOINT_KEY.test(k)) continue;
    if (typeof v !== 'string') throw invalid(`driver option ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

/** `scope`: what GetCapabilities answers ("global" for Swarm, --scope). */
export function networkRoutes(networks: NetworkService, scope: 'local' | 'global' = 'local'): Route[] {
  return [
    // capabilities
    route({
      method: 'NetworkDriver.GetCapabilities',
      handle: async () => staticAnswers(scope)['NetworkDriver.GetCapabilities'] as object,
    }),
    route({
      method: 'NetworkDriver.GwAllocCheck',
      schema: GwAllocCheckRequest,
      // loom puts the gateway on its bridge for every family, so Docker must always reserve one;
      // the options are validated here already, so a bad -o fails before any IPAM work.
      handle: async (b) => {
        parseNetworkSettings(genericOptions(b.Options));
        return { SkipIPv4: false, SkipIPv6: false };
      },
    }),
    // networks
    route({
      method: 'NetworkDriver.CreateNetwork',
      schema: CreateNetworkRequest,
      ids: (b) => ({ networkId: b.NetworkID }),
      handle: async (b) => {
        await networks.createNetwork({
          id: b.NetworkID,
          options: genericOptions(b.Options),
          enableIpv6: flag(b.Options, ENABLE_IPV6),
          internal: flag(b.Options, INTERNAL),
          ipv4: b.IPv4Data.map(toIpamData),
          ipv6: b.IPv6Data.map(toIpamData),
        });
        return {};
      },
    }),
    route({
      method: 'NetworkDriver.DeleteNetwork',
      schema: NetworkIdRequest,
      ids: (b) => ({ networkId: b.NetworkID }),
      handle: async (b) => {
        await networks.deleteNetwork(b.NetworkID);
        return {};
      },
    }),
    route({
      method: 'NetworkDriver.AllocateNetwork',
      schema: AllocateNetworkRequest,
      ids: (b) => ({ networkId: b.NetworkID }),
      // Swarm managers only, for global-scope drivers: workers receive these options in CreateNetwork.
      handle: async (b) => ({
        Options: await networks.allocateNetwork({ id: b.NetworkID, options: b.Options, ipv4: b.IPv4Data.map(toIpamData), ipv6: b.IPv6Data.map(toIpamData) }),
      }),
    }),
    route({
      method: 'NetworkDriver.FreeNetwork',
      schema: NetworkIdRequest,
      ids: (b) => ({ networkId: b.NetworkID }),
      handle: async (b) => {
        await networks.freeNetwork(b.NetworkID);
        return {};
      },
    }),
    // endpoints
    route({
      method: 'NetworkDriver.CreateEndpoint',
      schema: CreateEndpointRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        const r = await networks.createEndpoint({
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
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        await networks.deleteEndpoint(b.NetworkID, b.EndpointID);
        return {};
      },
    }),
    route({
      method: 'NetworkDriver.EndpointOperInfo',
      schema: EndpointRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async () => ({ Value: {} }),
    }),
    // join / leave
    route({
      method: 'NetworkDriver.Join',
      schema: JoinRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        const j = await networks.join(b.NetworkID, b.EndpointID, b.SandboxKey);
        return {
          InterfaceName: { SrcName: j.srcName, DstPrefix: 'eth' },
          ...(j.gateway ? { Gateway: j.gateway } : {}),
          ...(j.gatewayV6 ? { GatewayIPv6: j.gatewayV6 } : {}),
          StaticRoutes: [],
          // loom provides the gateway and outside connectivity itself: never docker_gwbridge.
          DisableGatewayService: true,
        };
      },
    }),
    route({
      method: 'NetworkDriver.Leave',
      schema: EndpointRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        await networks.leave(b.NetworkID, b.EndpointID);
        return {};
      },
    }),
    // external connectivity
    route({
      method: 'NetworkDriver.ProgramExternalConnectivity',
      schema: ProgramExternalConnectivityRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        await networks.programExternalConnectivity(b.NetworkID, b.EndpointID, b.Options);
        return {};
      },
    }),
    route({
      method: 'NetworkDriver.RevokeExternalConnectivity',
      schema: EndpointRequest,
      ids: (b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }),
      handle: async (b) => {
        await networks.revokeExternalConnectivity(b.NetworkID, b.EndpointID);
        return {};
      },
    }),
    // discovery (swarm gossip; loom finds its peers through its own cluster store)
    route({
      method: 'NetworkDriver.DiscoverNew',
      schema: DiscoveryRequest,
      handle: async () => ({}),
    }),
    route({
      method: 'NetworkDriver.DiscoverDelete',
      schema: DiscoveryRequest,
      handle: async () => ({}),
    }),
  ];
}

/** /Plugin.Activate: the subsystems loom serves (legacy plugins only). */
export const activateRoute: Route = route({
  method: 'Plugin.Activate',
  handle: async () => staticAnswers('local')['Plugin.Activate'] as object,
});
