/**
 * The lifecycle of networks as Docker asks for it (CreateNetwork, DeleteNetwork, and a
 * Swarm manager's AllocateNetwork/FreeNetwork). Every change is a list of named steps with
 * rollback, under the network's lock; the store is written last, so a stored record always
 * describes something the kernel holds. Endpoints: endpoint-service.ts; published ports:
 * ports/port-publisher.ts; the reconciler's repairs: repairs.ts.
 */
import type { BridgeInspection, DataPlane } from '../dataplane/bridge';
import { StepRunner, teardownAll } from '../dataplane/steps';
import { conflict, invalid } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { PortReserver } from '../ports/port-reserver';
import { OPT_LOOM_OVERLAY, NetworkSettings, parseNetworkSettings } from '../model/options';
import { CreateNetworkInput, buildNetworkRecord, checkIpamData, sameNetworkConfig } from '../model/records';
import type { BridgeSnapshot, IpamData, NetworkRecord } from '../model/types';
import type { NetworkFirewall } from './network-firewall';
import type { NetworkTable } from './network-table';
import type { OverlayControl } from './overlay-control';
import type { BackgroundWork } from './background-work';

export type { CreateNetworkInput } from '../model/records';

const NO_CLUSTER = 'overlay networks need a loom cluster: start loomd with --etcd (see docs/overlay.md)';

export interface NetworkServiceDeps {
  table: NetworkTable;
  dataplane: DataPlane;
  firewall: NetworkFirewall;
  ports: PortReserver;
  log: Logger;
  /** Cluster mode only: overlay networks (driver/cluster/coordinator.ts). */
  overlay?: OverlayControl | undefined;
  /** Endpoint work still running after the answer (pairs being made or removed). */
  background: BackgroundWork;
}

export class NetworkService {
  constructor(private readonly d: NetworkServiceDeps) {}

  /**
   * Swarm manager, global-scope driver: the options returned here are what every worker
   * receives in CreateNetwork. An overlay is registered for the whole swarm right away, so
   * workers' pools join it instead of racing for the subnet.
   */
  async allocateNetwork(input: { id: string; options: Record<string, string>; ipv4: IpamData[]; ipv6: IpamData[] }): Promise<Record<string, string>> {
    const settings = parseNetworkSettings(input.options);
    if (settings.mode !== 'overlay') return input.options;
    if (!this.d.overlay) throw invalid(NO_CLUSTER);
    const ipv4 = input.ipv4.map((d) => checkIpamData(d, 4));
    const ipv6 = input.ipv6.map((d) => checkIpamData(d, 6));
    const key = await this.d.overlay.allocateSwarm(input.id, settings, ipv4, ipv6, input.options);
    return { ...input.options, [OPT_LOOM_OVERLAY]: key };
  }

  async freeNetwork(networkId: string): Promise<void> {
    await this.d.overlay?.freeSwarm(networkId);
  }

  async createNetwork(input: CreateNetworkInput): Promise<void> {
    const { table, log } = this.d;
    const record = buildNetworkRecord(input);
    if (input.enableIpv6 && record.ipv6.length === 0) log.warn({ networkId: input.id }, 'IPv6 enabled but Docker sent no IPv6 pool');
    const settings = parseNetworkSettings(input.options);
    if (settings.mode === 'overlay' && !this.d.overlay) throw invalid(NO_CLUSTER);
    await table.withNetworkLock(record.id, async () => {
      const existing = table.get(record.id);
      if (existing) {
        const comparable = existing.overlay && !settings.explicitMtu ? { ...existing, mtu: record.mtu, overlay: undefined } : existing;
        if (!sameNetworkConfig(comparable as NetworkRecord, record)) {
          throw conflict(`network ${record.id} already exists with a different configuration`);
        }
        // Docker retried or re-sent (swarm workers do): converge, then succeed.
        await this.d.dataplane.ensureNetwork(existing, new StepRunner(`re-create network ${record.id.slice(0, 12)}`, log));
        await this.d.firewall.sync();
        return;
      }
      table.claim(record);
      try {
        await this.buildNetwork(record, settings);
      } finally {
        table.release(record.id);
      }
    });
  }

  /** The kernel, firewall and store work of a new network (caller holds its lock and its claim). */
  private async buildNetwork(record: NetworkRecord, settings: NetworkSettings): Promise<void> {
    const { table, overlay, log } = this.d;
    const steps = new StepRunner(`create network ${record.id.slice(0, 12)}`, log);
    if (settings.mode === 'overlay' && overlay) {
      await steps.step('register the overlay in the cluster', async () => {
        const { attachment, mtu, created } = await overlay.attach(record, settings);
        record.overlay = attachment;
        if (!settings.explicitMtu) record.mtu = mtu;
        return () => overlay.abandon(record, created);
      });
    } else if (overlay) {
      await overlay.checkLocal(record);
    }
    // An overlay's bridge in a namespace of its own is never someone else's: nothing to borrow.
    if (!record.overlay?.ns) await this.borrowIfForeign(record, steps);
    await this.d.dataplane.ensureNetwork(record, steps, { creating: true });
    await steps.step('install firewall rules', async () => {
      table.add(record);
      try {
        await this.d.firewall.sync();
      } catch (err) {
        table.remove(record.id);
        throw err;
      }
      return async () => {
        table.remove(record.id);
        await this.d.firewall.sync();
      };
    });
    await steps.step('store network', () => table.repo.putNetwork(record));
    table.restored.add(record.id);
    if (record.overlay) await overlay?.attached(record);
    else await overlay?.localCreated(record).catch((err) => log.warn({ networkId: record.id, err: String(err) }, 'could not record the subnet in the cluster'));
    log.info({ networkId: record.id, bridge: record.bridge, mtu: record.mtu, internal: record.internal }, 'network created');
  }

  /**
   * A bridge that exists without loom's mark is someone else's: borrowed, recorded as it is
   * before any change (under its own key until the network is stored, so a retry after a
   * crash still knows the original), and given back if the create fails. Another loomd's
   * bridge is refused; this loomd's own (an interrupted create) is taken as its own.
   */
  private async borrowIfForeign(record: NetworkRecord, steps: StepRunner): Promise<void> {
    const { dataplane, table, log } = this.d;
    let seen: BridgeInspection = { kind: 'absent' };
    let pending: BridgeSnapshot | undefined;
    await steps.step(`check bridge ${record.bridge}`, async () => {
      seen = await dataplane.inspectBridge(record.bridge);
      if (seen.kind === 'foreign') throw conflict(`bridge ${record.bridge} belongs to another loomd (${seen.mark})`);
      if (seen.kind === 'not-bridge') throw conflict(`interface ${record.bridge} exists and is not a bridge`);
      pending = await table.repo.getPendingBorrow(record.bridge);
      // Left by an attempt that died, for a bridge that is no longer someone else's.
      if (pending && seen.kind !== 'unmarked') await table.repo.deletePendingBorrow(record.bridge);
    });
    const found = seen as BridgeInspection;
    if (found.kind !== 'unmarked') return;
    const before = pending ?? found.snapshot;
    await steps.step(`borrow bridge ${record.bridge}`, async () => {
      await table.repo.putPendingBorrow(record.bridge, before);
      record.adoptedBridge = true;
      record.borrowed = before;
      return async () => {
        await dataplane.removeNetwork(record);
        await table.repo.deletePendingBorrow(record.bridge);
      };
    });
    log.info({ networkId: record.id, bridge: record.bridge }, 'borrowing an existing bridge: it will be given back as it was when the network is removed');
  }

  async deleteNetwork(networkId: string): Promise<void> {
    const { table, dataplane, overlay, log } = this.d;
    await table.withNetworkLock(networkId, async () => {
      const state = table.state(networkId);
      if (!state) {
        log.info({ networkId }, 'DeleteNetwork of an unknown network: nothing to do');
        return;
      }
      // Endpoints deleted just before: their veth pairs are gone before the network is.
      await this.d.background.settle(networkId);
      const record = state.record;
      const leftovers = [...state.endpoints.values()];
      if (leftovers.length > 0) {
        log.warn({ networkId, endpoints: leftovers.map((e) => e.id) }, 'network deleted with endpoints Docker forgot; removing them');
      }
      table.remove(networkId);
      // Its bridge name and subnets stay taken until the bridge is gone or given back.
      table.hold(record);
      for (const ep of leftovers) {
        if (ep.ports) this.d.ports.release(ep.ports);
        this.d.background.forget(ep.id);
      }
      const steps: Array<[string, () => Promise<unknown>]> = [
        ...leftovers.map((ep): [string, () => Promise<unknown>] => [`remove endpoint ${ep.id.slice(0, 12)}`, () => dataplane.removeEndpoint(record, ep)]),
        ['remove bridge', () => dataplane.removeNetwork(record)],
        ['remove firewall rules', () => this.d.firewall.sync()],
        ['delete from store', () => table.repo.deleteNetwork(networkId, leftovers.map((e) => e.id))],
      ];
      if (record.overlay && overlay) {
        for (const ep of leftovers) steps.push([`unpublish endpoint ${ep.id.slice(0, 12)}`, async () => overlay.endpointDown(record, ep)]);
        steps.push(['leave the overlay', () => overlay.detached(record)]);
      }
      await teardownAll(`delete network ${networkId.slice(0, 12)}`, steps).finally(() => table.release(networkId));
      log.info({ networkId, bridge: record.bridge }, 'network deleted');
    });
  }
}
