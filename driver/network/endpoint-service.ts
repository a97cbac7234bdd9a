/**
 * The lifecycle of endpoints as Docker asks for it: CreateEndpoint, Join, Leave,
 * DeleteEndpoint, each under its network's lock, as named steps with rollback. A new
 * endpoint is checked against the kernel and recorded, then answered; its veth pair is made
 * after the answer and Join waits for it (background-work.ts). Never echoes an address back;
 * returns a MAC only when Docker gave none.
 */
import type { DataPlane } from '../dataplane/bridge';
import { StepRunner, teardownAll } from '../dataplane/steps';
import { conflict, invalid, notFound } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import { checkSandboxKey } from '../kernel/netns-file';
import { macFor, normaliseMac, randomMac } from '../model/mac';
import { hostVethFor, ifbFor, peerVethFor } from '../model/naming';
import { checkLoomKeys } from '../model/options';
import { OPT_EGRESS_RATE, OPT_INGRESS_RATE, parseRates } from '../model/rates';
import { checkEndpointAddress, joinGateways } from '../model/records';
import type { EndpointRecord, JoinInfo, NetworkRecord } from '../model/types';
import type { PortReserver } from '../ports/port-reserver';
import type { BackgroundWork } from './background-work';
import type { EndpointEvents } from './endpoint-events';
import type { NetworkFirewall } from './network-firewall';
import type { NetworkState, NetworkTable } from './network-table';
import type { OverlayControl } from './overlay-control';

/** loom.* keys accepted as per-endpoint driver options. */
export const LOOM_ENDPOINT_OPTION_KEYS: readonly string[] = [OPT_EGRESS_RATE, OPT_INGRESS_RATE];

export interface CreateEndpointInput {
  networkId: string;
  id: string;
  address: string;
  addressV6: string;
  mac: string;
  /** Per-endpoint driver options (string values only). */
  options: Record<string, string>;
}

export interface EndpointServiceDeps {
  table: NetworkTable;
  dataplane: DataPlane;
  firewall: NetworkFirewall;
  ports: PortReserver;
  log: Logger;
  /** Cluster mode only: publishes overlay endpoints. */
  overlay?: OverlayControl | undefined;
  /** Who hears about joins and leaves (service discovery). */
  events?: EndpointEvents | undefined;
  /** Kernel teardown after the answer (veth pairs of deleted endpoints). */
  background: BackgroundWork;
}

export class EndpointService {
  constructor(private readonly d: EndpointServiceDeps) {}

  async createEndpoint(input: CreateEndpointInput): Promise<{ mac?: string }> {
    const { table, dataplane, log } = this.d;
    return table.withNetworkLock(input.networkId, async () => {
      const state = table.state(input.networkId);
      if (!state) throw notFound(`network ${input.networkId} not found`);
      checkLoomKeys(input.options, LOOM_ENDPOINT_OPTION_KEYS, 'endpoint');
      const rates = { ...state.record.rates, ...parseRates(input.options) };
      const net = state.record;
      await this.ensureRestored(net);
      const address = input.address ? checkEndpointAddress(input.address, net.ipv4, 4) : undefined;
      const addressV6 = input.addressV6 ? checkEndpointAddress(input.addressV6, net.ipv6, 6) : undefined;
      let dockerMac: string | undefined;
      if (input.mac) {
        dockerMac = normaliseMac(input.mac);
        if (!dockerMac) throw invalid(`invalid MAC address ${JSON.stringify(input.mac)}`);
      }
      const existing = state.endpoints.get(input.id);
      if (existing) {
        if (existing.address !== address || existing.addressV6 !== addressV6 || (dockerMac && existing.mac !== dockerMac)) {
          throw conflict(`endpoint ${input.id} already exists with different addresses`);
        }
        await this.d.background.made(existing.id);
        await dataplane.ensureEndpoint(net, existing, new StepRunner(`re-create endpoint ${input.id.slice(0, 12)}`, log));
        return existing.macFromDocker ? {} : { mac: existing.mac };
      }
      const names = { hostIf: hostVethFor(input.id), peerIf: peerVethFor(input.id) };
      // A retry after loomd died mid-call finds the pair already made: keep its MAC (unless another endpoint owns it).
      const owned = table.ownsLink(names.hostIf);
      const derived = macFor(address, addressV6);
      const taken = (m: string): boolean => [...state.endpoints.values()].some((e) => e.mac === m);
      const mac = dockerMac ?? (owned ? undefined : await dataplane.existingPeerMac(names, net)) ?? (derived && !taken(derived) ? derived : randomMac());
      const ep: EndpointRecord = {
        networkId: net.id,
        id: input.id,
        ...names,
        mac,
        macFromDocker: dockerMac !== undefined,
        ...(address ? { address } : {}),
        ...(addressV6 ? { addressV6 } : {}),
        options: input.options,
        ...(Object.keys(rates).length ? { rates } : {}),
        ...(rates.egressBps ? { ifb: ifbFor(input.id) } : {}),
        createdAt: new Date().toISOString(),
      };
      this.checkUnique(ep, state);
      // What would refuse the pair is refused now; the pair itself is made after the answer
      // (Join waits for it). Recorded first: a loomd killed before the pair exists restores it.
      await dataplane.checkNewEndpoint(net, ep);
      await table.repo.putEndpoint(ep);
      state.endpoints.set(ep.id, ep);
      const what = `create endpoint ${input.id.slice(0, 12)}`;
      this.d.background.startMaking(net.id, ep.id, what, () => dataplane.ensureEndpoint(net, ep, new StepRunner(what, log), { creating: true }));
      if (net.overlay) this.d.overlay?.endpointUp(net, ep);
      // Never echo the address; return the MAC only when Docker gave none.
      return ep.macFromDocker ? {} : { mac: ep.mac };
    });
  }

  /** Interface names (from the first 12 characters of the id) and addresses must be free. */
  private checkUnique(ep: EndpointRecord, state: NetworkState): void {
    for (const other of this.d.table.allEndpoints()) {
      if (other.hostIf === ep.hostIf) throw conflict(`endpoint ${ep.id} collides with endpoint ${other.id} on interface name ${ep.hostIf}`);
      if (other.networkId === ep.networkId && ((ep.address && other.address === ep.address) || (ep.addressV6 && other.addressV6 === ep.addressV6))) {
        throw conflict(`address ${ep.address && other.address === ep.address ? ep.address : ep.addressV6} is already used by endpoint ${other.id.slice(0, 12)}`);
      }
    }
    for (const d of [...state.record.ipv4, ...state.record.ipv6]) {
      if (d.gateway && [ep.address, ep.addressV6].some((a) => a !== undefined && stripLength(a) === stripLength(d.gateway as string))) {
        throw conflict(`endpoint address ${ep.address ?? ep.addressV6} is the network's gateway`);
      }
    }
  }

  /**
   * After a start, the background restore may not have reached a network yet when
   * Docker already uses it (restart-policy containers): restore it inline (caller holds the lock).
   */
  private async ensureRestored(record: NetworkRecord): Promise<void> {
    const { table, dataplane, log } = this.d;
    if (table.restored.has(record.id)) return;
    await dataplane.ensureNetwork(record, new StepRunner(`restore network ${record.id.slice(0, 12)}`, log));
    table.restored.add(record.id);
    await this.d.firewall.sync();
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const { table, log } = this.d;
    await table.withNetworkLock(networkId, async () => {
      const state = table.state(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep) {
        log.info({ networkId, endpointId }, 'DeleteEndpoint of an unknown endpoint: nothing to do');
        return;
      }
      state.endpoints.delete(endpointId);
      if (state.record.overlay) this.d.overlay?.endpointDown(state.record, ep);
      const hadPorts = Boolean(ep.ports?.length);
      if (ep.ports) this.d.ports.release(ep.ports);
      await teardownAll(`delete endpoint ${endpointId.slice(0, 12)}`, [
        ['remove published ports', async () => (hadPorts ? this.d.firewall.sync() : undefined)],
        ['delete from store', () => table.repo.deleteEndpoint(networkId, endpointId)],
      ]);
      // The veth pair goes after the answer (the kernel takes ~20 ms): nothing names it any more.
      // (After its creation, if that is still running.)
      const record = state.record;
      this.d.background.start(networkId, `remove veth pair of endpoint ${endpointId.slice(0, 12)}`, () => this.d.dataplane.removeEndpoint(record, ep), endpointId);
    });
  }

  async join(networkId: string, endpointId: string, sandboxKey: string): Promise<JoinInfo> {
    const { table, log } = this.d;
    return table.withNetworkLock(networkId, async () => {
      const { state, ep } = table.require(networkId, endpointId);
      checkSandboxKey(sandboxKey);
      const net = state.record;
      // The pair CreateEndpoint's answer left to be made: made just now, or made (or its error met) here.
      if (!(await this.d.background.made(endpointId))) {
        await this.d.dataplane.ensureEndpoint(net, ep, new StepRunner(`join endpoint ${endpointId.slice(0, 12)}`, log));
      }
      let joined = ep;
      if (ep.sandboxKey !== sandboxKey) {
        // Names belong to a sandbox: a join into another one learns them again.
        const { dnsNames: _names, ...rest } = ep;
        joined = { ...rest, sandboxKey };
        await table.repo.putEndpointSandbox(joined);
        state.endpoints.set(ep.id, joined);
      }
      if (sandboxKey) this.d.events?.joined(net, joined, sandboxKey);
      // loom.gateway=docker: no gateway of either family (Docker 28 keeps docker_gwbridge away
      // from a container that has an IPv6 one), so Docker attaches docker_gwbridge.
      const gw = joinGateways(net, ep);
      const info: JoinInfo = { srcName: ep.peerIf, dockerGateway: net.gatewayService === 'docker' };
      if (gw.v4) info.gateway = gw.v4;
      if (gw.v6) info.gatewayV6 = gw.v6;
      return info;
    });
  }

  async leave(networkId: string, endpointId: string): Promise<void> {
    const { table, log } = this.d;
    await table.withNetworkLock(networkId, async () => {
      const state = table.state(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep) {
        log.info({ networkId, endpointId }, 'Leave of an unknown endpoint: nothing to do');
        return;
      }
      const { sandboxKey: _gone, dnsNames, ...rest } = ep;
      await table.repo.putEndpointSandbox(rest);
      state.endpoints.set(endpointId, rest);
      // Its names and labels go from the cluster with the container (the endpoint itself stays until DeleteEndpoint).
      if ((dnsNames?.length || ep.sandboxKey) && state.record.overlay) this.d.overlay?.endpointUp(state.record, rest);
      if (ep.sandboxKey) this.d.events?.left(state.record, ep, ep.sandboxKey);
    });
  }

  /**
   * Records the DNS names Docker gives a joined overlay endpoint and publishes them (service
   * discovery, after Join, never inside a plugin call). False when the endpoint is gone or
   * joined to another sandbox meanwhile (the names are then not its own).
   */
  async setNames(networkId: string, endpointId: string, sandboxKey: string, names: string[]): Promise<boolean> {
    const { table } = this.d;
    return table.withNetworkLock(networkId, async () => {
      const state = table.state(networkId);
      const ep = state?.endpoints.get(endpointId);
      if (!state || !ep || ep.sandboxKey !== sandboxKey) return false;
      if (sameNames(ep.dnsNames, names)) return true;
      const updated = { ...ep, dnsNames: names };
      await table.repo.putEndpoint(updated);
      state.endpoints.set(endpointId, updated);
      if (state.record.overlay) this.d.overlay?.endpointUp(state.record, updated);
      return true;
    });
  }
}

const sameNames = (a: string[] | undefined, b: string[]): boolean => a !== undefined && a.length === b.length && a.every((n, i) => n === b[i]);
