/**
 * The network side of loomd, built in one place (the daemon and the kernel tier's tests):
 * the table every part shares, the request-facing services, port publication and the
 * reconciler's repairs, each given what it needs at construction.
 */
import type { Logger } from '../../lib/logger';
import type { DataPlane } from '../dataplane/bridge';
import type { Firewall } from '../firewall/model';
import { PortPublisher } from '../ports/port-publisher';
import { PortReserver } from '../ports/port-reserver';
import type { NetworkRepository } from '../store/network-repo';
import type { EndpointEvents } from './endpoint-events';
import { BackgroundWork } from './background-work';
import { EndpointService } from './endpoint-service';
import { NetworkFirewall } from './network-firewall';
import { NetworkService } from './network-service';
import { NetworkTable } from './network-table';
import type { OverlayControl } from './overlay-control';
import { NetworkRepairs } from './repairs';

export interface NetworkStack {
  table: NetworkTable;
  firewall: NetworkFirewall;
  networks: NetworkService;
  endpoints: EndpointService;
  ports: PortPublisher;
  repairs: NetworkRepairs;
  /** Kernel work after the answer (veth pairs made after CreateEndpoint, removed after DeleteEndpoint): shutdown waits for it. */
  background: BackgroundWork;
}

export interface NetworkStackParts {
  repo: NetworkRepository;
  dataplane: DataPlane;
  firewall: Firewall;
  log: Logger;
  /**
   * Cluster mode: builds the overlay control over the table (the coordinator looks networks
   * up in it), before the services that call it are built.
   */
  overlay?: (table: NetworkTable) => OverlayControl;
  /** Networks some network policy covers (they keep connection tracking). */
  policed?: (networkId: string) => boolean;
  /** Joins and leaves, for whoever listens (service discovery). */
  events?: EndpointEvents;
}

export function createNetworkStack(p: NetworkStackParts): NetworkStack {
  const table = new NetworkTable(p.repo, p.log);
  const firewall = new NetworkFirewall(table, p.firewall, p.policed);
  const reserver = new PortReserver(p.log.child({ svc: 'ports' }));
  const background = new BackgroundWork(p.log);
  const deps = { table, dataplane: p.dataplane, firewall, ports: reserver, overlay: p.overlay?.(table), log: p.log, background };
  const networks = new NetworkService(deps);
  const endpoints = new EndpointService({ ...deps, events: p.events });
  const ports = new PortPublisher(table, reserver, firewall, p.log.child({ svc: 'ports' }));
  const repairs = new NetworkRepairs(table, p.dataplane, firewall, networks, endpoints, p.log.child({ svc: 'reconcile' }));
  return { table, firewall, networks, endpoints, ports, repairs, background };
}
