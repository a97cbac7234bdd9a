/**
 * Published ports (`docker run -p`): ProgramExternalConnectivity and its revoke, under
 * the endpoint's network lock. Host ports are held by the PortReserver, the DNAT rules
 * live in the firewall, the bindings in the endpoint's record; a retry replaces the
 * previous bindings, and a failure puts everything back as it was.
 */
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import { PORTMAP_KEY, PublishedPort, parsePortMap } from '../model/port-map';
import { routesOutside } from '../model/records';
import type { EndpointRecord } from '../model/types';
import type { NetworkFirewall } from '../network/network-firewall';
import type { NetworkTable } from '../network/network-table';
import type { PortReserver } from './port-reserver';

export class PortPublisher {
  constructor(
    private readonly table: NetworkTable,
    private readonly ports: PortReserver,
    private readonly firewall: NetworkFirewall,
    private readonly log: Logger,
  ) {}

  /** Re-takes the host ports of published bindings after a start. */
  async restore(): Promise<void> {
    for (const ep of this.table.allEndpoints()) if (ep.ports?.length) await this.ports.restore(ep.ports);
  }

  /**
   * Publishes the container's ports on this endpoint (Docker asks the endpoint that is
   * the container's gateway). Host ports are reserved, DNAT rules installed.
   */
  async program(networkId: string, endpointId: string, options: Record<string, unknown>): Promise<PublishedPort[]> {
    return this.table.withNetworkLock(networkId, async () => {
      const { state, ep } = this.table.require(networkId, endpointId);
      const net = state.record;
      const bindings = parsePortMap(options[PORTMAP_KEY]);
      // Internal networks publish nothing; loom.gateway=docker networks leave it to docker_gwbridge
      // (Docker never makes their endpoints a gateway, so it does not ask; if it did, nothing to do).
      if (!routesOutside(net) || (bindings.length === 0 && !ep.ports?.length)) return [];
      const previous = ep.ports ?? [];
      const container = { v4: ep.address && stripLength(ep.address), v6: ep.addressV6 && stripLength(ep.addressV6) };
      const chosen = await this.ports.replace(previous, bindings, container, net.hostBinding ?? '0.0.0.0');
      const updated: EndpointRecord = { ...ep, ports: chosen };
      state.endpoints.set(ep.id, updated);
      try {
        await this.firewall.sync();
        await this.table.repo.putEndpoint(updated);
      } catch (err) {
        state.endpoints.set(ep.id, ep);
        await this.ports.undoReplace(chosen, previous);
        await this.firewall.sync().catch(() => undefined);
        throw err;
      }
      this.log.info({ networkId, endpointId, ports: chosen.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`) }, 'ports published');
      return chosen;
    });
  }

  /** Removes the endpoint's published ports (Docker: the container stops or another endpoint becomes its gateway). */
  async revoke(networkId: string, endpointId: string): Promise<void> {
    await this.table.withNetworkLock(networkId, async () => {
      const state = this.table.state(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep?.ports?.length) return;
      this.ports.release(ep.ports);
      const { ports: _gone, ...rest } = ep;
      state.endpoints.set(ep.id, rest);
      await this.firewall.sync();
      await this.table.repo.putEndpoint(rest);
    });
  }
}
