/**
 * The firewall of every network on this host, rendered from the network table: one
 * place where "make the kernel's rules match loom's networks" is asked for.
 */
import type { Firewall } from '../firewall/model';
import type { NetworkTable } from './network-table';

export class NetworkFirewall {
  constructor(
    private readonly table: NetworkTable,
    private readonly firewall: Firewall,
  ) {}

  sync(): Promise<void> {
    return this.firewall.sync(this.table.firewallView());
  }

  /** Differences between the kernel's rules and loom's networks (empty: in sync). */
  check(): Promise<string[]> {
    return this.firewall.check(this.table.firewallView());
  }
}
