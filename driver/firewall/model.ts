import type { PublishedPort } from '../model/port-map';

/** What the firewall needs to know about one loom network: validated names and prefixes only. */
export interface FirewallNetwork {
  id: string;
  bridge: string;
  subnets4: string[];
  subnets6: string[];
  /**
   * Nothing is forwarded beyond the bridge, no NAT: --internal networks, and networks whose
   * containers reach the outside through Docker's docker_gwbridge instead (loom.gateway=docker).
   */
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  /**
   * Some network policy covers the network: its traffic must stay connection-tracked (the
   * policy table lets replies through by conntrack state), so it is not exempted with notrack.
   */
  tracked?: boolean;
  /** Host ports forwarded to this network's containers (`docker run -p`). */
  published: PublishedPort[];
}

/** The firewall seam handed to data planes: make the kernel's rules match this set of networks. */
export interface Firewall {
  sync(networks: FirewallNetwork[]): Promise<void>;
  /** Differences between the kernel's rules and what `networks` need; empty when in sync. */
  check(networks: FirewallNetwork[]): Promise<string[]>;
}
