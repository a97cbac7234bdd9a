/** Shared set-up for the IpamService unit tests: MemoryKv, silent logs, injectable host routes. */
import { LoomError } from '../../lib/errors';
import { silentLogger } from '../../lib/logger';
import { MemoryKv } from '../../lib/kv';
import { parseDefaultPool } from '../../ipam-driver/core/pool-picker';
import { Prefix, parsePrefix } from '../../lib/prefix';
import { GATEWAY_TYPE, LOCAL_SPACE } from '../../ipam-driver/address-spaces';
import { IpamService, PoolRequest } from '../../ipam-driver/ipam-service';
import { IpamRepository } from '../../ipam-driver/ipam-store';

export interface Fixture {
  kv: MemoryKv;
  ipam: IpamService;
  /** Prefixes the fake host routes; edit to simulate a routing table. */
  routes: string[];
  /** Opens another service over the same store (a restart). */
  reopen(): Promise<IpamService>;
}

export const DEFAULT_POOLS = ['172.16.0.0/12:16', '192.168.0.0/16:20', 'fd00:1::/48:64'];

export interface FixtureOptions {
  defaultPools?: string[];
  kv?: MemoryKv;
  /** Replaces the fake routing table (e.g. to make the lookup fail). */
  hostRoutes?: () => Promise<Prefix[]>;
}

export function fixture(opts: FixtureOptions = {}): Fixture {
  const kv = opts.kv ?? new MemoryKv();
  const routes: string[] = [];
  const hostRoutes = opts.hostRoutes ?? (async () => routes.map((r) => parsePrefix(r)));
  const defaultPools = (opts.defaultPools ?? DEFAULT_POOLS).map(parseDefaultPool);
  const make = (): IpamService => new IpamService(new IpamRepository(kv), { defaultPools, hostRoutes }, silentLogger());
  return {
    kv,
    ipam: make(),
    routes,
    reopen: async () => {
      const s = make();
      await s.load();
      return s;
    },
  };
}

export const poolReq = (over: Partial<PoolRequest> = {}): PoolRequest => ({
  addressSpace: LOCAL_SPACE,
  pool: '',
  subPool: '',
  options: {},
  v6: false,
  ...over,
});

export const GATEWAY = { RequestAddressType: GATEWAY_TYPE };

export async function rejection(p: Promise<unknown>): Promise<LoomError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LoomError);
    return err as LoomError;
  }
  throw new Error('expected a LoomError, the promise resolved');
}

/** Store keys under a prefix, sorted. */
export const keys = (kv: MemoryKv, prefix: string): string[] => [...kv.data.keys()].filter((k) => k.startsWith(prefix)).sort();
