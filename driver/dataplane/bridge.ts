/**
 * The bridge data plane: one Linux bridge per network carrying the gateway address(es)
 * (and, for an overlay network, its VXLAN device), one veth pair per endpoint with the
 * host end on the bridge. Creation runs the step tables of network-steps.ts and
 * endpoint-steps.ts: every "ensure" is idempotent (adopts what is already right) and
 * registers the inverse of what it changed on the StepRunner.
 *
 * Ownership (kernel/link-owner.ts): a link is this loomd's when it carries its mark. Links
 * another loomd marked are never changed or deleted (a conflict is reported); unmarked
 * links with the names of this loomd's records were made by an earlier loom and are marked
 * when met; an unmarked bridge met by a new network is borrowed (borrowed-bridge.ts).
 */
import { conflict } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { NetnsPaths } from '../kernel/netns-file';
import { Sysctl } from '../kernel/sysctl';
import { TrafficControl } from '../kernel/tc';
import { bridgeAddresses } from '../model/records';
import type { EndpointRecord, NetworkRecord } from '../model/types';
import { giveBackBridge, snapshotBridge } from './borrowed-bridge';
import type { BridgeInspection, DataPlane, EnsureOptions, Gateways } from './data-plane';
import { ENDPOINT_STEPS, observeEndpoint } from './endpoint-steps';
import { DataPlaneDeps, DataPlaneKernel, DataPlaneSysctl, Shaper, ownerOfLink } from './kernel-verbs';
import { NETWORK_STEPS, createdBridge, observeNetwork, refuseForeign } from './network-steps';
import { OverlayNsDeps, ensureNsEndpoint, ensureNsNetwork, nsPeerMac, removeNsEndpoint, removeNsNetwork } from './overlay-ns';
import { plumbIntoSandbox } from './replumb';
import { StepRunner, runTable } from './steps';

// The seam's types, for the callers that import them from here.
export type { BridgeInspection, DataPlane, EnsureOptions } from './data-plane';

export class BridgeDataPlane implements DataPlane {
  private readonly deps: DataPlaneDeps;
  private readonly netns: NetnsPaths;
  private readonly ovns: OverlayNsDeps | undefined;

  /**
   * `sysctl`: rooted where the daemon was told /proc/sys is (--proc-sys); `tc`: the shaper; `netns`: where SandboxKeys are opened (--netns-dir);
   * `overlayNs`: what overlay networks with a namespace of their own need (overlay-ns.ts; without it such networks are refused).
   */
  constructor(kernel: DataPlaneKernel, log: Logger, opts: { sysctl?: DataPlaneSysctl; tc?: Shaper; netns?: NetnsPaths; overlayNs?: OverlayNsDeps } = {}) {
    this.deps = { kernel, log, sysctl: opts.sysctl ?? new Sysctl(), tc: opts.tc ?? new TrafficControl() };
    this.netns = opts.netns ?? new NetnsPaths();
    this.ovns = opts.overlayNs;
  }

  /** The namespace layout's dependencies when `net` uses it (undefined: the bridge is in the host's namespace). */
  private nsOf(net: NetworkRecord): OverlayNsDeps | undefined {
    if (!net.overlay?.ns) return undefined;
    if (!this.ovns) throw conflict(`network ${net.id.slice(0, 12)} has a namespace of its own, which this data plane cannot handle`);
    return this.ovns;
  }

  private get kernel(): DataPlaneKernel {
    return this.deps.kernel;
  }

  private get log(): Logger {
    return this.deps.log;
  }

  async inspectBridge(name: string): Promise<BridgeInspection> {
    const link = await this.kernel.findLink(name);
    if (!link) return { kind: 'absent' };
    if (link.kind !== 'bridge') return { kind: 'not-bridge' };
    const owner = ownerOfLink(this.kernel, link);
    if (owner === 'self') return { kind: 'own' };
    if (owner === 'foreign') return { kind: 'foreign', mark: link.alias ?? '' };
    return { kind: 'unmarked', snapshot: await snapshotBridge(this.kernel, this.deps.sysctl, link) };
  }

  async ensureNetwork(net: NetworkRecord, steps: StepRunner, opts: EnsureOptions = {}): Promise<{ createdBridge: boolean }> {
    const ns = this.nsOf(net);
    if (ns) {
      await ensureNsNetwork(this.deps, ns, net, steps, opts);
      return { createdBridge: true };
    }
    const c = await observeNetwork(this.deps, net, opts);
    await runTable(NETWORK_STEPS, c, steps);
    return { createdBridge: createdBridge(c) };
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    const ns = this.nsOf(net);
    if (ns) return removeNsNetwork(this.deps, ns, net);
    if (net.overlay) this.leftAlone(await this.kernel.deleteOwnedLink(net.overlay.vxlan, { unmarkedToo: true }), net.overlay.vxlan);
    const link = await this.kernel.findLink(net.bridge);
    if (net.adoptedBridge && link && ownerOfLink(this.kernel, link) === 'none') {
      // Not loom's bridge: give it back as it was found (records of older looms hold no snapshot: loom's addresses only).
      if (net.borrowed) return giveBackBridge(this.kernel, this.deps.sysctl, net.bridge, net.borrowed, bridgeAddresses(net).map((a) => a.cidr), this.log);
      for (const a of bridgeAddresses(net)) await this.kernel.delAddress(net.bridge, a.family, a.value, a.len);
      return;
    }
    const removed = await this.kernel.deleteOwnedLink(net.bridge, { unmarkedToo: !net.adoptedBridge });
    if (removed === 'absent') this.log.info({ bridge: net.bridge }, 'bridge was already gone');
    this.leftAlone(removed, net.bridge);
  }

  /** Logs a recorded link that is not this loomd's any more (another loomd's mark): never deleted. */
  private leftAlone(result: 'deleted' | 'absent' | 'not-ours', name: string): void {
    if (result === 'not-ours') this.log.warn({ link: name }, 'a link with the name of one of this loomd\'s records is not this loomd\'s: left alone');
  }

  async ensureEndpoint(net: NetworkRecord, ep: EndpointRecord, steps: StepRunner, opts: EnsureOptions = {}): Promise<void> {
    const ns = this.nsOf(net);
    if (ns) return ensureNsEndpoint(this.deps, ns, net, ep, steps, opts);
    const c = await observeEndpoint(this.deps, net, ep, opts);
    await runTable(ENDPOINT_STEPS, c, steps);
  }

  async checkNewEndpoint(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    // Every name the record will hold, in this namespace (an overlay's own namespace holds only
    // this loomd's links): free, or this loomd's (a leftover of an attempt, replaced or adopted).
    // A record's names are later taken as loom's (unmarked ones as an earlier loom's), so this is
    // where someone else's link must be refused, before the record exists.
    for (const name of [ep.hostIf, ep.peerIf, ...(ep.ifb ? [ep.ifb] : [])]) {
      const link = await this.kernel.findLink(name);
      if (!link) continue;
      if (name !== ep.ifb && link.kind !== 'veth') throw conflict(`interface ${name} exists and is not a veth`);
      refuseForeign(this.deps, link);
      if (ownerOfLink(this.kernel, link) !== 'self') throw conflict(`interface ${name} exists and is not this loomd's (no owner mark)`);
    }
  }

  async replumbEndpoint(net: NetworkRecord, ep: EndpointRecord, gateways: Gateways): Promise<void> {
    if (!ep.sandboxKey) throw conflict(`endpoint ${ep.id} has no sandbox to plumb into`);
    const steps = new StepRunner(`re-plumb endpoint ${ep.id.slice(0, 12)}`, this.log);
    await plumbIntoSandbox(this.deps, ep, this.netns.local(ep.sandboxKey), gateways, steps, () => this.ensureEndpoint(net, ep, steps));
  }

  async existingPeerMac(ep: Pick<EndpointRecord, 'hostIf' | 'peerIf'>, net?: NetworkRecord): Promise<string | undefined> {
    const ns = net ? this.nsOf(net) : undefined;
    if (ns && net) return nsPeerMac(this.deps, ns, net, ep);
    const host = await this.kernel.findLink(ep.hostIf);
    if (!host) return undefined; // (a new endpoint's case: one lookup, not two)
    const peer = await this.kernel.findLink(ep.peerIf);
    if (!peer || ownerOfLink(this.kernel, host) !== 'self' || ownerOfLink(this.kernel, peer) !== 'self') return undefined;
    return peer.mac || undefined;
  }

  async removeEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    const ns = this.nsOf(net);
    if (ns) {
      const results = await removeNsEndpoint(this.deps, ns, net, ep);
      for (const [r, name] of results) this.leftAlone(r, name);
      if (results.every(([r]) => r === 'absent')) this.log.debug({ endpointId: ep.id }, 'veth pair was already gone');
      return;
    }
    // Deleting either end removes the pair; the container end may have been moved back by Docker.
    // Recorded names: unmarked links are an earlier loom's; another loomd's are left alone.
    const host = await this.kernel.deleteOwnedLink(ep.hostIf, { unmarkedToo: true });
    const peer = await this.kernel.deleteOwnedLink(ep.peerIf, { unmarkedToo: true });
    if (ep.ifb) this.leftAlone(await this.kernel.deleteOwnedLink(ep.ifb, { unmarkedToo: true }), ep.ifb);
    this.leftAlone(host, ep.hostIf);
    this.leftAlone(peer, ep.peerIf);
    if (host === 'absent' && peer === 'absent') this.log.debug({ endpointId: ep.id }, 'veth pair was already gone');
  }
}
