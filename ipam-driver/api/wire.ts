/**
 * Wire schemas of Docker's remote IpamDriver API, exactly as Docker sends them
 * (PascalCase). Failures are reported in `Error` (not `Err`); the envelope sends both.
 */
import { z } from 'zod';

const id = z.string().min(1).max(256);
/** Option maps arrive as `null` from some Docker versions; values are strings. */
const stringMap = z
  .record(z.string().max(256), z.string().max(4096))
  .nullish()
  .transform((v) => v ?? {});

/** /IpamDriver.RequestPool */
export const RequestPoolRequest = z.object({
  /** LoomLocal or LoomGlobal, as returned by GetDefaultAddressSpaces. */
  AddressSpace: z.string().min(1).max(64),
  /** --subnet, or "" when loom must choose. */
  Pool: z.string().max(64).default(''),
  /** --ip-range, or "". */
  SubPool: z.string().max(64).default(''),
  /** --ipam-opt values. */
  Options: stringMap,
  /** true for the IPv6 pool of a --ipv6 network. */
  V6: z.boolean().default(false),
});

/** /IpamDriver.ReleasePool */
export const ReleasePoolRequest = z.object({ PoolID: id });

/** /IpamDriver.RequestAddress */
export const RequestAddressRequest = z.object({
  PoolID: id,
  /** A static address (--ip, --gateway, --aux-address) or "" for any. */
  Address: z.string().max(64).default(''),
  /** RequestAddressType=com.docker.network.gateway for gateways. */
  Options: stringMap,
});

/** /IpamDriver.ReleaseAddress */
export const ReleaseAddressRequest = z.object({ PoolID: id, Address: z.string().min(1).max(64) });
