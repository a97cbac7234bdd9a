/**
 * The firewall of every network on this host, rendered from the network table: one
 * place where "make the kernel's rules match loom's networks" is asked for.
 */
import type { Firewall, FirewallNetwork } from '../firewall/model';
import type { NetworkTable } from './network-table';

export class NetworkFirewall {
  constructor(
    private readonly table: NetworkTable,
    private readonly firewall: Firewall,
    /** Networks a policy covers keep connection tracking (firewall/model.ts, `tracked`). */
    private readonly tracked: (networkId: string) => boolean = () => false,
  ) {}

  private view(): FirewallNetwork[] {
    return this.table.firewallView().map((n) => (this.tracked(n.id) ? { ...n, tracked: true } : n));
  }

  sync(): Promise<void> {
    return this.firewall.sync(this.view());
  }

  /** Differences between the kernel's rules and loom's networks (empty: in sync). */
  check(): Promise<string[]> {
    return this.firewall.check(this.view());
  }
}
