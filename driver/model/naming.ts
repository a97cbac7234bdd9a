/**
 * Deterministic interface names, derived from Docker's ids and kept within
 * Linux's 15-character limit (IFNAMSIZ 16 with the NUL byte). Names are never
 * picked by scanning the host. A name says nothing about who made a link (another
 * loomd or an operator may use the same): ownership is the mark (kernel/link-owner.ts).
 */
export const BRIDGE_PREFIX = 'lm-';
export const HOST_VETH_PREFIX = 'lv';
export const PEER_VETH_PREFIX = 'lc';
/** VXLAN device of an overlay network. */
export const VXLAN_PREFIX = 'lx';
/** IFB device shaping what an endpoint sends (loom.egress_rate). */
export const IFB_PREFIX = 'lb';
export const IFNAME_MAX = 15;
const ID_CHARS = 12;

/** Docker network/endpoint ids: 64 hex characters, or 25 base-36 characters for swarm networks. */
export const ID_PATTERN = /^[A-Za-z0-9]{1,128}$/;

const short = (id: string): string => id.slice(0, ID_CHARS).toLowerCase();

export const bridgeNameFor = (networkId: string): string => BRIDGE_PREFIX + short(networkId);
export const hostVethFor = (endpointId: string): string => HOST_VETH_PREFIX + short(endpointId);
export const peerVethFor = (endpointId: string): string => PEER_VETH_PREFIX + short(endpointId);
export const ifbFor = (endpointId: string): string => IFB_PREFIX + short(endpointId);
export const vxlanFor = (networkId: string): string => VXLAN_PREFIX + short(networkId);

/** A valid Linux interface name for a user-chosen bridge name. */
export function isValidIfname(name: string): boolean {
  return name.length >= 1 && name.length <= IFNAME_MAX && name !== '.' && name !== '..' && /^[A-Za-z0-9_.-]+$/.test(name);
}
