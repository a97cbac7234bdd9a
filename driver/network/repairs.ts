/**
 * The reconciler's repair entry points (driver/reconcile/reconciler.ts applies its plan
 * through them): each takes the network's lock and re-checks the finding it acts on, so a
 * repair planned from an observation that a call has since overtaken changes nothing.
 */
import type { DataPlane } from '../dataplane/bridge';
import { StepRunner } from '../dataplane/steps';
import type { Logger } from '../../lib/logger';
import { joinGateways } from '../model/records';
import type { NetworkRecord } from '../model/types';
import type { EndpointService } from './endpoint-service';
import type { NetworkFirewall } from './network-firewall';
import type { NetworkService } from './network-service';
import type { NetworkTable } from './network-table';

export class NetworkRepairs {
  constructor(
    private readonly table: NetworkTable,
    private readonly dataplane: DataPlane,
    private readonly firewall: NetworkFirewall,
    private readonly networks: NetworkService,
    private readonly endpoints: EndpointService,
    private readonly log: Logger,
  ) {}

  /** Re-creates a stored network's bridge and addresses if the kernel lost them (caller holds the lock). */
  async restoreNetworkLocked(record: NetworkRecord, steps: StepRunner): Promise<void> {
    await this.dataplane.ensureNetwork(record, steps);
    this.table.restored.add(record.id);
  }

  /** restore-network: takes the lock; false when the network is gone meanwhile. */
  async restoreNetwork(networkId: string, why = 'reconcile'): Promise<boolean> {
    return this.table.withNetworkLock(networkId, async () => {
      const record = this.table.get(networkId);
      if (!record) return false;
      await this.restoreNetworkLocked(record, new StepRunner(`${why} network ${networkId.slice(0, 12)}`, this.log));
      return true;
    });
  }

  syncFirewall(): Promise<void> {
    return this.firewall.sync();
  }

  /**
   * Removes an endpoint Docker forgot (its veth pair is gone, or Docker no longer lists
   * it), unless it was (re)created after `observedAt`.
   */
  async removeStaleEndpoint(networkId: string, endpointId: string, observedAt: number): Promise<boolean> {
    const ep = this.table.endpoint(networkId, endpointId);
    if (!ep || Date.parse(ep.createdAt) > observedAt) return false;
    await this.endpoints.deleteEndpoint(networkId, endpointId);
    return true;
  }

  /**
   * The veth pair of an endpoint whose container still runs was deleted (by hand): make a
   * new pair and plumb its container end into the container again.
   */
  async replumbEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    return this.table.withNetworkLock(networkId, async () => {
      const state = this.table.state(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep?.sandboxKey) return false;
      const net = state.record;
      const gw = joinGateways(net, ep);
      await this.dataplane.replumbEndpoint(net, ep, { gateway4: gw.v4, gateway6: gw.v6 });
      return true;
    });
  }

  /** Removes a network Docker no longer knows (docker network rm while loomd was down). */
  async removeStaleNetwork(networkId: string, observedAt: number): Promise<boolean> {
    const n = this.table.get(networkId);
    if (!n || Date.parse(n.createdAt) > observedAt) return false;
    await this.networks.deleteNetwork(networkId);
    return true;
  }
}
