/**
 * Thin handlers for the IpamDriver calls: the envelope parses the body with the call's
 * schema, the handler converts it to the service's terms, calls the service and shapes
 * the typed reply (api/wire.ts).
 */
import { Route, route } from '../lib/http-route';
import { IPAM_HANDSHAKE } from './address-spaces';
import type { IpamService } from './ipam-service';
import {
  DefaultAddressSpacesReply,
  IpamCapabilitiesReply,
  ReleaseAddressReply,
  ReleaseAddressRequest,
  ReleasePoolReply,
  ReleasePoolRequest,
  RequestAddressReply,
  RequestAddressRequest,
  RequestPoolReply,
  RequestPoolRequest,
} from './api/wire';

export function ipamRoutes(ipam: IpamService): Route[] {
  return [
    route({
      method: 'IpamDriver.GetCapabilities',
      handle: async (): Promise<IpamCapabilitiesReply> => IPAM_HANDSHAKE['IpamDriver.GetCapabilities'],
    }),
    route({
      method: 'IpamDriver.GetDefaultAddressSpaces',
      handle: async (): Promise<DefaultAddressSpacesReply> => IPAM_HANDSHAKE['IpamDriver.GetDefaultAddressSpaces'],
    }),
    route({
      method: 'IpamDriver.RequestPool',
      schema: RequestPoolRequest,
      handle: async (b): Promise<RequestPoolReply> => {
        const r = await ipam.requestPool({ addressSpace: b.AddressSpace, pool: b.Pool, subPool: b.SubPool, options: b.Options, v6: b.V6 });
        return { PoolID: r.poolId, Pool: r.pool, Data: {} };
      },
      ids: (b) => ({ pool: b.Pool || '(auto)' }),
    }),
    route({
      method: 'IpamDriver.ReleasePool',
      schema: ReleasePoolRequest,
      handle: async (b): Promise<ReleasePoolReply> => {
        await ipam.releasePool(b.PoolID);
        return {};
      },
      ids: (b) => ({ poolId: b.PoolID }),
    }),
    route({
      method: 'IpamDriver.RequestAddress',
      schema: RequestAddressRequest,
      handle: async (b): Promise<RequestAddressReply> => {
        const r = await ipam.requestAddress({ poolId: b.PoolID, address: b.Address, options: b.Options });
        return { Address: r.address, Data: {} };
      },
      ids: (b) => ({ poolId: b.PoolID }),
    }),
    route({
      method: 'IpamDriver.ReleaseAddress',
      schema: ReleaseAddressRequest,
      handle: async (b): Promise<ReleaseAddressReply> => {
        await ipam.releaseAddress(b.PoolID, b.Address);
        return {};
      },
      ids: (b) => ({ poolId: b.PoolID, address: b.Address }),
    }),
  ];
}
