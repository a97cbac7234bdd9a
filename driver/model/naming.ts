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
/** Overlay network namespace layout (docs/overlay.md): the gateway veth (host end, namespace end). */
export const GATEWAY_HOST_PREFIX = 'lg';
export const GATEWAY_PEER_PREFIX = 'lk';
/** The tunnel veth tied to the VXLAN device by tc mirred (host end, namespace end). */
export const TUNNEL_HOST_PREFIX = 'lt';
export const TUNNEL_PEER_PREFIX = 'lu';
/** Network namespaces of overlay networks: `loom-<instance>-<12 id characters>` (a file in /run/netns). */
export const OVERLAY_NETNS_PREFIX = 'loom-';
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

/** The names of an overlay network's namespace and of the veths that connect it to the host. */
export function overlayNsLayoutFor(instance: string, networkId: string): { netns: string; gatewayIf: string; gatewayPeer: string; tunnelIf: string; tunnelPeer: string } {
  const id = short(networkId);
  return {
    netns: `${OVERLAY_NETNS_PREFIX}${instance}-${id}`,
    gatewayIf: GATEWAY_HOST_PREFIX + id,
    gatewayPeer: GATEWAY_PEER_PREFIX + id,
    tunnelIf: TUNNEL_HOST_PREFIX + id,
    tunnelPeer: TUNNEL_PEER_PREFIX + id,
  };
}

/** A valid Linux interface name for a user-chosen bridge name. */
export function isValidIfname(name: string): boolean {
  return name.length >= 1 && name.length <= IFNAME_MAX && name !== '.' && name !== '..' && /^[A-Za-z0-9_.-]+$/.test(name);
}
