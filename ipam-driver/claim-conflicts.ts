/**
 * Subnets this host uses whose cluster-wide claim belongs to someone else: found when a
 * claim made while etcd was unreachable is published, or by the claim audit of a
 * reconcile pass. Reported, never repaired by loom (a network and its containers exist on
 * both sides): one log line when found and one when resolved, the gauge
 * `loom_cluster_claim_conflicts`, and `loomctl doctor`.
 */
import type { Logger } from '../lib/logger';

export interface ClaimConflict {
  subnet: string;
  /** Who holds the claim in etcd: "host <id>" or "overlay <key>". */
  holder: string;
  since: string;
}

export class ClaimConflicts {
  private readonly bySubnet = new Map<string, ClaimConflict>();

  constructor(private readonly log: Logger) {}

  report(subnet: string, holder: string): void {
    if (this.bySubnet.get(subnet)?.holder === holder) return;
    this.bySubnet.set(subnet, { subnet, holder, since: new Date().toISOString() });
    this.log.error(
      { subnet, holder },
      'cluster claim conflict: this host uses a subnet that etcd says belongs to another (taken while etcd was unreachable); remove the network on one side',
    );
  }

  clear(subnet: string): void {
    if (!this.bySubnet.delete(subnet)) return;
    this.log.info({ subnet }, 'cluster claim conflict resolved');
  }

  /** Drops conflicts of subnets this host no longer uses. */
  retain(subnets: Set<string>): void {
    for (const s of [...this.bySubnet.keys()]) if (!subnets.has(s)) this.clear(s);
  }

  list(): ClaimConflict[] {
    return [...this.bySubnet.values()];
  }

  get size(): number {
    return this.bySubnet.size;
  }
}
