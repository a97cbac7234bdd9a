/**
 * Thin handlers for the IpamDriver calls: parse (done by the envelope), call the
 * service, shape Docker's reply.
 */
import { Route, route } from '../lib/http-route';
import { IpamService } from './ipam-service';
import { IPAM_HANDSHAKE } from './address-spaces';
import { ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest } from './api/wire';

export function ipamRoutes(ipam: IpamService): Route[] {
  return [
    route({
      method: 'IpamDriver.GetCapabilities',
      handle: async () => IPAM_HANDSHAKE['IpamDriver.GetCapabilities'],
    }),
    route({
      method: 'IpamDriver.GetDefaultAddressSpaces',
      handle: async () => IPAM_HANDSHAKE['IpamDriver.GetDefaultAddressSpaces'],
    }),
    route({
      method: 'IpamDriver.RequestPool',
      schema: RequestPoolRequest,
      handle: async (b) => {
        const r = await ipam.requestPool({ addressSpace: b.AddressSpace, pool: b.Pool, subPool: b.SubPool, options: b.Options, v6: b.V6 });
        return { PoolID: r.poolId, Pool: r.pool, Data: {} };
      },
      ids: (b) => ({ pool: b.Pool || '(auto)' }),
    }),
    route({
      method: 'IpamDriver.ReleasePool',
      schema: ReleasePoolRequest,
      handle: async (b) => {
        await ipam.releasePool(b.PoolID);
        return {};
      },
      ids: (b) => ({ poolId: b.PoolID }),
    }),
    route({
      method: 'IpamDriver.RequestAddress',
      schema: RequestAddressRequest,
      handle: async (b) => {
        const r = await ipam.requestAddress({ poolId: b.PoolID, address: b.Address, options: b.Options });
        return { Address: r.address, Data: {} };
      },
      ids: (b) => ({ poolId: b.PoolID }),
    }),
    route({
      method: 'IpamDriver.ReleaseAddress',
      schema: ReleaseAddressRequest,
      handle: async (b) => {
        await ipam.releaseAddress(b.PoolID, b.Address);
        return {};
      },
      ids: (b) => ({ poolId: b.PoolID, address: b.Address }),
    }),
  ];
}
