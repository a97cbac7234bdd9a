/**
 * Docker's wire shapes to loom's own (driver/model): the option maps of CreateNetwork and
 * CreateEndpoint, and IPAM data. Pure; a shape loom cannot use is an `invalid` error.
 */
import { invalid } from '../../lib/errors';
import type { IpamData } from '../model/types';

export const GENERIC = 'com.docker.network.generic';
export const ENABLE_IPV6 = 'com.docker.network.enable_ipv6';
export const INTERNAL = 'com.docker.network.internal';

/** Keys Docker itself puts into endpoint options; everything else is a driver-opt. */
const DOCKER_ENDPOINT_KEY = /^com\.docker\.network\./;

export function toIpamData(d: { Pool: string; Gateway?: string | undefined; AuxAddresses: Record<string, string> }): IpamData {
  return { pool: d.Pool, ...(d.Gateway ? { gateway: d.Gateway } : {}), aux: d.AuxAddresses };
}

export function genericOptions(options: Record<string, unknown>): Record<string, string> {
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

export function flag(options: Record<string, unknown>, key: string): boolean {
  const v = options[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw invalid(`${key} must be a boolean`);
}

/** Per-endpoint driver options: string values whose keys are not Docker's own. */
export function driverOptions(options: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (DOCKER_ENDPOINT_KEY.test(k)) continue;
    if (typeof v !== 'string') throw invalid(`driver option ${k} must be a string`);
    out[k] = v;
  }
  return out;
}
