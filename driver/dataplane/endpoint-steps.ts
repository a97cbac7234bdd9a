/**
 * Creating (or converging) an endpoint's kernel objects, as a table of named steps: a new
 * veth pair on the network's bridge (isolated when ICC is off) with its bandwidth limits, or,
 * for a pair that exists, its mark, its attachment to the bridge and its up state.
 *
 * Bandwidth limits (kernel/tc.ts): a tbf qdisc on the host end shapes what the container
 * receives; what it sends is redirected to an IFB device whose tbf qdisc shapes it.
 */
import { LoomError, conflict } from '../../lib/errors';
import type { LinkOwner } from '../kernel/link-owner';
import type { LinkInfo } from '../kernel/netlink-codec';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import type { EnsureOptions } from './data-plane';
import { DataPlaneDeps, ownerOfLink } from './kernel-verbs';
import { refuseForeign } from './network-steps';
import { SetupStep, defineStep } from './steps';

export interface EndpointContext extends DataPlaneDeps {
  net: NetworkRecord;
  ep: EndpointRecord;
  opts: EnsureOptions;
  /** The host end as found (undefined: the pair is made), and whose it is. */
  host: LinkInfo | undefined;
  hostOwner: LinkOwner | undefined;
  /** The network's bridge, looked up when the host end exists (to check its attachment). */
  bridge: LinkInfo | undefined;
}

/** Reads the host end (and the bridge) and refuses what must not be touched; changes nothing. */
export async function observeEndpoint(deps: DataPlaneDeps, net: NetworkRecord, ep: EndpointRecord, opts: EnsureOptions): Promise<EndpointContext> {
  const host = await deps.kernel.findLink(ep.hostIf);
  if (host && host.kind !== 'veth') throw conflict(`interface ${ep.hostIf} exists and is not a veth`);
  refuseForeign(deps, host);
  const hostOwner = host ? ownerOfLink(deps.kernel, host) : undefined;
  if (hostOwner === 'none' && opts.creating) throw conflict(`interface ${ep.hostIf} exists and is not this loomd's (no owner mark)`);
  const bridge = host ? await deps.kernel.findLink(net.bridge) : undefined;
  return { ...deps, net, ep, opts, host, hostOwner, bridge };
}

/** The host end exists on another master than the bridge (or on none). */
const detached = (c: EndpointContext): boolean => Boolean(c.host && c.bridge && c.host.master !== c.bridge.index);

type Step = SetupStep<EndpointContext>;

/**
 * The pair in one request: the host end on the bridge and up, the container end with its
 * MAC. A stale container end of this loomd's blocks naming the pair: it is removed and the
 * pair made again; anyone else's is reported by the create.
 */
export const createVeth: Step = defineStep({
  id: 'create-veth',
  when: (c) => !c.host,
  name: (c) => `create veth ${c.ep.hostIf}/${c.ep.peerIf}`,
  run: async (c) => {
    const create = (): Promise<void> => c.kernel.createVethPair(c.ep.hostIf, c.ep.peerIf, { mtu: c.net.mtu, peerMac: c.ep.mac, master: c.net.bridge });
    try {
      await create();
    } catch (err) {
      // Naming the container end failed: a stale one of this loomd's goes, then one more try.
      if ((err as LoomError).errno !== 'EEXIST' || (await c.kernel.deleteOwnedLink(c.ep.peerIf)) !== 'deleted') throw err;
      await create();
    }
  },
  undo: (c) => c.kernel.deleteOwnedLink(c.ep.hostIf),
});

/** Recorded by this loomd, made by an earlier loom that did not mark its links. */
export const markHostEnd: Step = defineStep({
  id: 'mark-host-end',
  when: (c) => c.hostOwner === 'none',
  name: (c) => `mark ${c.ep.hostIf} as this loomd's`,
  run: (c) => c.kernel.setOwnerMark(c.ep.hostIf),
});

export const attachHostEnd: Step = defineStep({
  id: 'attach-host-end',
  when: detached,
  name: (c) => `attach ${c.ep.hostIf} to ${c.net.bridge}`,
  run: (c) => c.kernel.setMaster(c.ep.hostIf, c.net.bridge),
});

/** enable_icc=false: a port just made or just attached is isolated from the others. */
export const isolatePort: Step = defineStep({
  id: 'isolate-port',
  when: (c) => !c.net.icc && (!c.host || detached(c)),
  name: (c) => `isolate port ${c.ep.hostIf}`,
  run: (c) => c.kernel.setPortIsolated(c.ep.hostIf, true),
});

/** What the container receives leaves the host end: shaped there. */
export const limitIngress: Step = defineStep({
  id: 'limit-ingress',
  when: (c) => !c.host && Boolean(c.ep.rates?.ingressBps),
  name: (c) => `limit ${c.ep.hostIf} ingress ${c.ep.rates?.ingressBps}bit/s`,
  run: (c) => c.tc.shapeEgress(c.ep.hostIf, c.ep.rates?.ingressBps as number),
});

const shapesEgress = (c: EndpointContext): boolean => !c.host && Boolean(c.ep.rates?.egressBps && c.ep.ifb);

/** The IFB that queues what the container sends. A recorded endpoint's IFB may have been made by an earlier loom, without a mark. */
export const createIfb: Step = defineStep({
  id: 'create-ifb',
  when: shapesEgress,
  name: (c) => `create ifb ${c.ep.ifb}`,
  run: async (c) => {
    const ifb = c.ep.ifb as string;
    await c.kernel.deleteOwnedLink(ifb, { unmarkedToo: !c.opts.creating });
    await c.kernel.createIfb(ifb, c.net.mtu);
  },
  undo: (c) => c.kernel.deleteOwnedLink(c.ep.ifb as string),
});

export const limitEgress: Step = defineStep({
  id: 'limit-egress',
  when: shapesEgress,
  name: (c) => `limit ${c.ep.hostIf} egress ${c.ep.rates?.egressBps}bit/s`,
  run: (c) => c.tc.shapeIngressVia(c.ep.hostIf, c.ep.ifb as string, c.ep.rates?.egressBps as number),
});

export const hostEndUp: Step = defineStep({
  id: 'host-end-up',
  when: (c) => c.host !== undefined && !c.host.up,
  name: (c) => `set ${c.ep.hostIf} up`,
  run: (c) => c.kernel.setUp(c.ep.hostIf),
});

/**
 * The table, in order. A new pair: create, isolate, shape. An existing one: mark, attach,
 * isolate, up (its shaping is not redone).
 */
export const ENDPOINT_STEPS: ReadonlyArray<Step> = [createVeth, markHostEnd, attachHostEnd, isolatePort, limitIngress, createIfb, limitEgress, hostEndUp];
