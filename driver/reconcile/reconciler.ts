/**
 * The reconciler: observe (Docker first, without any lock; then loom's state and
 * the kernel), plan with the pure `plan`, apply each repair under the lock of the
 * object it touches, count and log every repair. It runs once right after start-up
 * (the socket already answers) and then periodically; passes never overlap.
 */
import { asLoomError } from '../../lib/errors';
import type { OverlayNetns } from '../kernel/overlay-netns';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import { ownerOf } from '../kernel/link-owner';
import type { NetworkTable } from '../network/network-table';
import type { NetworkRepairs } from '../network/repairs';
import type { NetworkFirewall } from '../network/network-firewall';
import type { Logger } from '../../lib/logger';
import type { IpamService } from '../../ipam-driver/index';
import type { DockerViewSource } from './docker-view';
import { Action, Observed, plan } from './plan';
import { observe } from './observe';
import type { NetnsPaths } from '../kernel/netns-file';

export interface ReconcilerOptions {
  intervalMs: number;
  graceMs: number;
  confirmMs: number;
  dockerTimeoutMs: number;
}

export const DEFAULT_RECONCILE: ReconcilerOptions = { intervalMs: 30_000, graceMs: 10_000, confirmMs: 1_000, dockerTimeoutMs: 10_000 };

/** While Docker's view is missing (dockerd restarting), passes are retried this often, doubling up to the interval. */
const DOCKER_RETRY_MS = 1_000;

/**
 * When the next pass runs: sooner than the interval when the last one left suspects to confirm
 * (after `confirmMs`) or could not see Docker (retries back off from 1 s), so that what an
 * ungraceful restart left behind is released seconds after dockerd and loomd are both up.
 */
export function nextPassDelay(opts: ReconcilerOptions, last: { newSuspects: number; dockerMissing: boolean }, dockerMisses: number): number {
  let ms = opts.intervalMs;
  if (last.newSuspects > 0) ms = Math.min(ms, opts.confirmMs);
  if (last.dockerMissing) ms = Math.min(ms, DOCKER_RETRY_MS * 2 ** Math.min(dockerMisses - 1, 10));
  return Math.max(ms, 100);
}

export interface PassResult {
  at: string;
  durationMs: number;
  dockerView: boolean;
  applied: Action[];
  skipped: Action[];
  errors: string[];
  suspects: number;
  /** Suspects first seen in this pass (a confirming pass follows after confirmMs). */
  newSuspects: number;
  /** Repairs outside the plan (overlay VXLAN entries), by kind. */
  extra: Record<string, number>;
}

export interface ReconcilerDeps {
  /** loom's networks (read-only here; every change goes through `repairs`). */
  networks: NetworkTable;
  repairs: NetworkRepairs;
  ipam: IpamService;
  kernel: NetlinkKernel;
  firewall: NetworkFirewall;
  docker: DockerViewSource | undefined;
  /** Where this process opens a SandboxKey (managed plugin: --netns-dir); default: Docker's paths. */
  netns?: NetnsPaths;
  /** The overlay namespaces, whose links are observed too (observe.ts). */
  overlayNs?: Pick<OverlayNetns, 'exists' | 'open'>;
  log: Logger;
  options: ReconcilerOptions;
  /** Called for every applied repair (metrics). */
  onRepair?: (kind: string, count: number) => void;
  /** Further repairs run at the end of each pass (overlay VXLAN entries); returns counts by kind. */
  extraRepairs?: () => Promise<Record<string, number>>;
}

export class Reconciler {
  private suspects = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<PassResult> | undefined;
  /** loomctl gc runs in progress (timer passes wait for them). */
  private forcing = 0;
  readonly repairs = new Map<string, number>();
  last: PassResult | undefined;
  passes = 0;
  /** Container names by endpoint id, from the last Docker view (metrics, loomctl). */
  containerNames = new Map<string, string>();

  constructor(private readonly d: ReconcilerDeps) {}

  start(): void {
    let dockerMisses = 0;
    const tick = (): void => {
      if (this.forcing > 0) {
        this.timer = setTimeout(tick, this.d.options.confirmMs).unref();
        return;
      }
      this.runOnce()
        .catch((err) => this.d.log.error({ err: asLoomError(err).message }, 'reconcile pass failed'))
        .finally(() => {
          const dockerMissing = this.d.docker !== undefined && this.last?.dockerView === false;
          dockerMisses = dockerMissing ? dockerMisses + 1 : 0;
          const delay = nextPassDelay(this.d.options, { newSuspects: this.last?.newSuspects ?? 0, dockerMissing }, dockerMisses);
          if (this.timer !== undefined) this.timer = setTimeout(tick, delay).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inflight?.catch(() => undefined);
  }

  /** One pass now (joins a pass already running). `force` skips the two-sightings rule. */
  runOnce(opts: { force?: boolean } = {}): Promise<PassResult> {
    if (opts.force) return this.ownPass(true);
    if (!this.inflight) this.start0(false);
    return this.inflight as Promise<PassResult>;
  }

  /** A pass of its own (a forced one must not join a pass already running unforced): after the current one. */
  private async ownPass(force: boolean): Promise<PassResult> {
    for (let i = 0; this.inflight && i < 100; i++) await this.inflight.catch(() => undefined);
    if (!this.inflight) this.start0(force);
    return this.inflight as Promise<PassResult>;
  }

  private start0(force: boolean): void {
    this.inflight = this.pass(force).finally(() => {
      this.inflight = undefined;
    });
  }

  /**
   * loomctl gc: a forced pass, then a second one `confirmMs` later so that orphan
   * interfaces (which carry no age) are confirmed too. Returns both passes' work.
   */
  async runForced(): Promise<PassResult> {
    // Timer passes wait meanwhile: what this gc finds, it repairs and reports itself.
    this.forcing++;
    let first: PassResult;
    let second: PassResult;
    try {
      first = await this.runOnce({ force: true });
      await new Promise((r) => setTimeout(r, this.d.options.confirmMs));
      second = await this.runOnce({ force: true });
    } finally {
      this.forcing--;
    }
    const extra = { ...first.extra };
    for (const [k, n] of Object.entries(second.extra)) extra[k] = (extra[k] ?? 0) + n;
    return {
      ...second,
      extra,
      applied: [...first.applied, ...second.applied],
      skipped: [...first.skipped, ...second.skipped],
      errors: [...first.errors, ...second.errors],
    };
  }

  /** What a pass would do now, without doing it (loomctl doctor); suspected orphans count as found. */
  async preview(): Promise<{ observed: Observed; actions: Action[]; unknownToLoom: Array<{ networkId: string; endpointId: string; container: string }> }> {
    const observed = await this.observe();
    const { actions } = plan(observed, new Map(), { ...this.d.options, force: 'all' });
    // Endpoints Docker lists on loom's networks that loom does not know (not repaired automatically).
    const unknownToLoom: Array<{ networkId: string; endpointId: string; container: string }> = [];
    const known = new Set(observed.endpoints.map((e) => e.id));
    for (const n of observed.networks) {
      for (const id of observed.docker?.networks.get(n.id)?.endpoints.keys() ?? []) {
        if (!known.has(id)) unknownToLoom.push({ networkId: n.id, endpointId: id, container: observed.docker?.containerNames.get(id) ?? '' });
      }
    }
    return { observed, actions, unknownToLoom };
  }

  private observe(): Promise<Observed> {
    return observe(this.d);
  }

  private async pass(force: boolean): Promise<PassResult> {
    const started = Date.now();
    const observed = await this.observe();
    if (observed.docker) this.containerNames = observed.docker.containerNames;
    const { actions, suspects } = plan(observed, this.suspects, { ...this.d.options, force });
    this.suspects = suspects;
    const applied: Action[] = [];
    const skipped: Action[] = [];
    const errors: string[] = [];
    const cutoff = observed.at - this.d.options.graceMs;
    for (const action of actions) {
      try {
        const done = await this.apply(action, observed.at, cutoff);
        (done ? applied : skipped).push(action);
        if (done) {
          this.repairs.set(action.kind, (this.repairs.get(action.kind) ?? 0) + 1);
          this.d.onRepair?.(action.kind, 1);
          this.d.log.warn({ repair: action.kind, ...action }, 'reconciler repaired drift');
        }
      } catch (err) {
        errors.push(`${action.kind}: ${asLoomError(err).message}`);
        this.d.log.error({ repair: action.kind, ...action, err: asLoomError(err).message }, 'reconciler repair failed');
      }
    }
    const extra: Record<string, number> = {};
    if (this.d.extraRepairs) {
      try {
        for (const [kind, n] of Object.entries(await this.d.extraRepairs())) {
          extra[kind] = n;
          this.repairs.set(kind, (this.repairs.get(kind) ?? 0) + n);
          this.d.onRepair?.(kind, n);
        }
      } catch (err) {
        errors.push(`overlay: ${asLoomError(err).message}`);
      }
    }
    this.passes++;
    this.last = {
      at: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      dockerView: observed.docker !== undefined,
      applied,
      skipped,
      errors,
      suspects: suspects.size,
      newSuspects: [...suspects.values()].filter((first) => first === observed.at).length,
      extra,
    };
    this.d.log.debug({ ...this.last, applied: applied.length, skipped: skipped.length }, 'reconcile pass');
    return this.last;
  }

  private async apply(a: Action, observedAt: number, cutoff: number): Promise<boolean> {
    const { networks, repairs, ipam, kernel } = this.d;
    switch (a.kind) {
      case 'restore-network':
        return repairs.restoreNetwork(a.networkId);
      case 'sync-firewall':
        await repairs.syncFirewall();
        return true;
      case 'delete-orphan-link':
        // Re-checked at deletion time: a record may own it by now, and only a link with this loomd's mark goes.
        if (networks.ownsLink(a.name)) return false;
        return (await kernel.deleteOwnedLink(a.name)) === 'deleted';
      case 'mark-link': {
        if (!networks.ownsLink(a.name) || networks.isBorrowedBridge(a.name)) return false;
        const link = await kernel.findLink(a.name);
        if (!link || ownerOf(link.alias, kernel.mark ?? '') !== 'none') return false;
        await kernel.setOwnerMark(a.name);
        return true;
      }
      case 'remove-stale-endpoint':
        return repairs.removeStaleEndpoint(a.networkId, a.endpointId, observedAt);
      case 'remove-stale-network':
        return repairs.removeStaleNetwork(a.networkId, observedAt);
      case 'release-orphan-address':
        return ipam.releaseOrphanAddress(a.poolId, a.address, cutoff);
      case 'release-orphan-pool':
        return ipam.releaseOrphanPool(a.poolId, cutoff);
      case 'replumb-endpoint':
        return repairs.replumbEndpoint(a.networkId, a.endpointId);
      case 'restore-allocation':
        return ipam.restoreAllocation(a.poolId, a.address, a.allocKind);
    }
  }
}
