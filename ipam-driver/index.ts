/**
 * The IPAM driver's public entry: everything driver/ (or a tool) may use of it; nothing
 * under driver/ imports another file of ipam-driver/. Kept light on purpose: the bootstrap
 * loads it (handshake answers, default pool parsing) before the plugin socket opens, so the
 * service, the cluster allocator and the HTTP handlers are loaded by the factories below,
 * on first use.
 */
import type { Logger } from '../lib/logger';
import type { KvStore } from '../lib/kv';
import type { Route } from '../lib/http-route';
import type { ClusterStore } from '../lib/cluster/store';
import type { ClaimConflicts } from './claim-conflicts';
import type { ClusterDeferral, ClusterPools } from './cluster-pools';
import type { IpamConfig, IpamService } from './ipam-service';

export { GLOBAL_SPACE, IPAM_HANDSHAKE, LOCAL_SPACE, poolIdOf } from './address-spaces';
export type { DefaultAddressSpacesReply, IpamCapabilitiesReply } from './address-spaces';
export { parseDefaultPool } from './core/pool-picker';
export type { DefaultPool } from './core/pool-picker';
export type { IpamConfig, IpamService, PoolView } from './ipam-service';
export type { AllocationKind, AllocationRecord, PoolRecord } from './ipam-store';
export type { ClusterDeferral, ClusterPools } from './cluster-pools';
export type { ClaimConflict, ClaimConflicts } from './claim-conflicts';

/* eslint-disable @typescript-eslint/no-require-imports */

/** The IPAM service over `kv` (its records, docs/state.md), local or cluster-wide per `config`. */
export function createIpam(kv: KvStore, config: IpamConfig, log: Logger): IpamService {
  const { IpamService: Service } = require('./ipam-service') as typeof import('./ipam-service');
  const { IpamRepository } = require('./ipam-store') as typeof import('./ipam-store');
  return new Service(new IpamRepository(kv), config, log);
}

/** Cluster-wide pools, blocks, reservations and loans in the cluster store (cluster mode). */
export function createClusterPools(store: ClusterStore, hostId: string, log: Logger, deferral: ClusterDeferral): ClusterPools {
  const { ClusterPools: Pools } = require('./cluster-pools') as typeof import('./cluster-pools');
  return new Pools(store, hostId, log, undefined, deferral);
}

/** Subnets whose cluster-wide claim another host or overlay holds (reported, not repaired). */
export function createClaimConflicts(log: Logger): ClaimConflicts {
  const { ClaimConflicts: Conflicts } = require('./claim-conflicts') as typeof import('./claim-conflicts');
  return new Conflicts(log);
}

/** The IpamDriver routes of the plugin socket. */
export function ipamRoutes(ipam: IpamService): Route[] {
  return (require('./handlers') as typeof import('./handlers')).ipamRoutes(ipam);
}
