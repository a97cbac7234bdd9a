/**
 * Docker's remote IpamDriver API both ways, exactly as on the wire (PascalCase): a zod
 * schema per request, a type per reply (as libnetwork's ipams/remote/api/api.go types
 * them). Failures are reported in `Error` (not `Err`); the envelope adds both, so no reply
 * type carries them.
 */
import { z } from 'zod/v3';

/**
 * Replies of the argument-less calls (GetCapabilities, GetDefaultAddressSpaces): they live
 * with their answers in address-spaces.ts, which the bootstrap loads before zod.
 */
export type { DefaultAddressSpacesReply, IpamCapabilitiesReply } from '../address-spaces';

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

/** /IpamDriver.RequestPool reply. */
export interface RequestPoolReply {
  /** The pool's id, passed back in every later call on the pool. */
  PoolID: string;
  /** The subnet (CIDR) granted. */
  Pool: string;
  /** Pool data for Docker; loom sends none (no gateway: Docker asks RequestAddress for it). */
  Data: Record<string, string>;
}

/** /IpamDriver.ReleasePool */
export const ReleasePoolRequest = z.object({ PoolID: id });

/** /IpamDriver.ReleasePool reply: empty. */
export type ReleasePoolReply = Record<string, never>;

/** /IpamDriver.RequestAddress */
export const RequestAddressRequest = z.object({
  PoolID: id,
  /** A static address (--ip, --gateway, --aux-address) or "" for any. */
  Address: z.string().max(64).default(''),
  /** RequestAddressType=com.docker.network.gateway for gateways. */
  Options: stringMap,
});

/** /IpamDriver.RequestAddress reply. */
export interface RequestAddressReply {
  /** The address with the pool's prefix length ("198.18.0.7/24"). */
  Address: string;
  /** Address data for Docker; loom sends none. */
  Data: Record<string, string>;
}

/** /IpamDriver.ReleaseAddress */
export const ReleaseAddressRequest = z.object({ PoolID: id, Address: z.string().min(1).max(64) });

/** /IpamDriver.ReleaseAddress reply: empty. */
export type ReleaseAddressReply = Record<string, never>;
