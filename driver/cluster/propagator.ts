/**
 * Makes overlay networks appear on every host of the cluster by themselves: loom
 * creates (and removes) the Docker network through the local Docker API. This runs
 * asynchronously, from cluster watches and the reconciler, never inside a plugin
 * call: dockerd would be waiting on loom while loom waits on dockerd.
 */
import type Dockerode from 'dockerode';
import type { Logger } from '../../lib/logger';
import { stripLength } from '../../lib/prefix';
import type { ClusterAgent, OverlayRecord } from './agent';
import { OPT_LOOM_MODE, OPT_LOOM_OVERLAY } from '../model/options';


export class DockerPropagator {
  private readonly busy = new Set<string>();

  constructor(
    private readonly getDocker: () => Promise<Dockerode>,
    private readonly agent: ClusterAgent,
    private readonly driverName: string,
    private readonly log: Logger,
  ) {}

  /** On the origin: learns the Docker name of the overlay's network and records it in the cluster. */
  nameLater(networkId: string, key: string): void {
    void (async () => {
      for (let attempt = 0; attempt < 60; attempt++) {
        try {
          const info = await (await this.getDocker()).getNetwork(networkId).inspect();
          await this.agent.nameOverlay(key, info.Name);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 500).unref());
        }
      }
      this.log.warn({ networkId, key }, 'could not learn the Docker name of an overlay network; other hosts will not create it by themselves');
    })();
  }

  /** Creates the overlay's Docker network on this host unless it has one (or opted out). */
  async ensure(rec: OverlayRecord, hasLocal: boolean): Promise<void> {
    // Swarm creates swarm overlays on its nodes itself.
    if (!rec.name || rec.swarmId || hasLocal || rec.origin === this.agent.hostId || this.busy.has(rec.key)) return;
    if (this.agent.health.isDown) return; // the reconciler tries again once etcd is back
    this.busy.add(rec.key);
    try {
      if (await this.agent.isDetached(rec.key)) return;
      const docker = await this.getDocker();
      const existing = (await docker.listNetworks({ filters: { name: [rec.name] } })).find((n) => n.Name === rec.name);
      if (existing) {
        if (existing.Options?.[OPT_LOOM_OVERLAY] !== rec.key) {
          this.log.warn({ overlay: rec.key, name: rec.name }, 'a different network with the overlay\'s name exists on this host; not creating it');
        }
        return;
      }
      const config = (subnets: OverlayRecord['ipv4']): Array<Record<string, unknown>> =>
        subnets.map((s) => ({
          Subnet: s.pool,
          ...(s.gateway ? { Gateway: stripLength(s.gateway) } : {}),
          ...(Object.keys(s.aux).length ? { AuxiliaryAddresses: Object.fromEntries(Object.entries(s.aux).map(([k, v]) => [k, stripLength(v)])) } : {}),
        }));
      await docker.createNetwork({
        Name: rec.name,
        Driver: this.driverName,
        CheckDuplicate: true,
        Internal: rec.internal,
        EnableIPv6: rec.enableIpv6,
        IPAM: { Driver: this.driverName, Config: [...config(rec.ipv4), ...(rec.enableIpv6 ? config(rec.ipv6) : [])] as Dockerode.IPAM['Config'] },
        Options: { ...rec.options, [OPT_LOOM_MODE]: 'overlay', [OPT_LOOM_OVERLAY]: rec.key },
      });
      this.log.info({ overlay: rec.key, name: rec.name }, 'created the overlay network on this host');
    } catch (err) {
      this.log.warn({ overlay: rec.key, name: rec.name, err: String(err) }, 'could not create the overlay network on this host; will retry');
    } finally {
      this.busy.delete(rec.key);
    }
  }

  /** Removes this host's instance of an overlay its origin deleted (Docker refuses while containers use it). */
  async remove(networkId: string, key: string): Promise<void> {
    try {
      await (await this.getDocker()).getNetwork(networkId).remove();
      this.log.info({ overlay: key, networkId }, 'removed the overlay network its origin deleted');
    } catch (err) {
      this.log.warn({ overlay: key, networkId, err: String(err) }, 'could not remove the deleted overlay network here yet (containers attached?); will retry');
    }
  }
}
