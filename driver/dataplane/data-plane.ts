/**
 * The seam between the network service and a data plane: what the service asks of the
 * kernel side of a network and its endpoints. One implementation today, BridgeDataPlane
 * (bridge.ts): a Linux bridge per network; an overlay network's bridge lives in a namespace of
 * its own, tied to a VXLAN device in the host's namespace (overlay-ns.ts).
 */
import type { BridgeSnapshot, EndpointRecord, NetworkRecord } from '../model/types';
import type { StepRunner } from './steps';

/** What is at a network's bridge name before the network is made. */
export type BridgeInspection =
  | { kind: 'absent' }
  /** This loomd's mark: made by an earlier attempt at this network (killed before its record was stored). */
  | { kind: 'own' }
  | { kind: 'foreign'; mark: string }
  | { kind: 'not-bridge' }
  /** No loom mark: someone else's bridge, borrowed as `snapshot` describes it. */
  | { kind: 'unmarked'; snapshot: BridgeSnapshot };

/**
 * `creating`: the network or endpoint has no record yet (a new one, or a retry of a create
 * that never finished). An own link found then is a leftover of that attempt, removed if
 * the create fails again; an unmarked one is not this loomd's.
 */
export interface EnsureOptions {
  creating?: boolean;
}

/** The gateways a re-plumbed container gets its default routes through. */
export interface Gateways {
  gateway4?: string | undefined;
  gateway6?: string | undefined;
}

export interface DataPlane {
  /** What is at `name` now: nothing, this loomd's, another loomd's, not a bridge, or someone's bridge to borrow. */
  inspectBridge(name: string): Promise<BridgeInspection>;
  /**
   * Makes the network's kernel objects right (idempotent: adopts what already is), registering
   * the inverse of each change on `steps`. Returns whether the bridge is loom's (false: borrowed,
   * `net.adoptedBridge`).
   */
  ensureNetwork(net: NetworkRecord, steps: StepRunner, opts?: EnsureOptions): Promise<{ createdBridge: boolean }>;
  /** Deletes what loom made; a borrowed bridge is given back as it was found. */
  removeNetwork(net: NetworkRecord): Promise<void>;
  /**
   * Refuses (conflict) a new endpoint whose names (the pair's ends, its IFB) are taken in loomd's
   * namespace by a link that is not this loomd's (or, for an end, not a veth); changes nothing.
   */
  checkNewEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** Makes the endpoint's veth pair (and shaping) right, like ensureNetwork. */
  ensureEndpoint(net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts?: EnsureOptions): Promise<void>;
  /** Deletes the endpoint's links (recorded names only; another loomd's are left alone). */
  removeEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** The MAC of an endpoint's container end if a previous, interrupted attempt already made it. */
  existingPeerMac(ep: Pick<EndpointRecord, 'hostIf' | 'peerIf'>, net?: NetworkRecord): Promise<string | undefined>;
  /** Re-makes a running container's deleted veth pair and plumbs it into its namespace. */
  replumbEndpoint(net: NetworkRecord, ep: EndpointRecord, gateways: Gateways): Promise<void>;
}
