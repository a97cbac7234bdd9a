/**
 * The IPAM's names (address spaces, pool ids, the gateway request option) and its answers
 * to Docker's handshake calls, which depend on nothing else: the bootstrap's early socket
 * serves them before the rest of loomd has loaded.
 */
import { Prefix, formatPrefix } from '../lib/prefix';

export const LOCAL_SPACE = 'LoomLocal';
export const GLOBAL_SPACE = 'LoomGlobal';

/** RequestAddress option naming what the address is for; GATEWAY_TYPE marks a network's gateway. */
const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const GATEWAY_TYPE = 'com.docker.network.gateway';

/** Whether Docker asks for a network's gateway (RequestAddress options). */
export const isGatewayRequest = (options: Record<string, string>): boolean => options[REQUEST_ADDRESS_TYPE] === GATEWAY_TYPE;

/** A pool's id: `<space>/<subnet>[/<ip-range>]` (docs/state.md). */
export function poolIdOf(space: string, pool: Prefix, subPool?: Prefix): string {
  return subPool ? `${space}/${formatPrefix(pool)}/${formatPrefix(subPool)}` : `${space}/${formatPrefix(pool)}`;
}

/** Typed answers to the IPAM's argument-less calls. */
export interface IpamCapabilitiesReply {
  RequiresMACAddress: boolean;
  RequiresRequestReplay: boolean;
}
export interface DefaultAddressSpacesReply {
  LocalDefaultAddressSpace: string;
  GlobalDefaultAddressSpace: string;
}

export const IPAM_HANDSHAKE: { 'IpamDriver.GetCapabilities': IpamCapabilitiesReply; 'IpamDriver.GetDefaultAddressSpaces': DefaultAddressSpacesReply } = {
  // Allocations are persisted by loom itself; docs/state.md explains why replay is off.
  'IpamDriver.GetCapabilities': { RequiresMACAddress: false, RequiresRequestReplay: false },
  'IpamDriver.GetDefaultAddressSpaces': { LocalDefaultAddressSpace: LOCAL_SPACE, GlobalDefaultAddressSpace: GLOBAL_SPACE },
};
