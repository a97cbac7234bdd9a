/**
 * Prometheus metrics (prom-client), served on their own listener (off by default;
 * never on the plugin socket). Counters are bumped by the edge and the reconciler;
 * gauges are computed when Prometheus scrapes, from loom's state and the kernel.
 */
import express, { Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterAgent } from '../cluster/agent';
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import type { NetworkLookup } from '../network/network-table';
import type { IpamService } from '../../ipam-driver/index';
import { Logger, logLosses } from '../../lib/logger';

/** Pools above this utilisation get an exhaustion warning (gauge and log line). */
export const EXHAUSTION_WARNING = 0.9;

export interface MetricsSources {
  networks: NetworkLookup;
  ipam: IpamService;
  kernel: NetlinkKernel;
  agent?: ClusterAgent;
  /** Cluster mode: subnets used here whose cluster-wide claim is someone else's. */
  claimConflicts?: { size: number };
  /** Container names by endpoint id, where Docker told the reconciler. */
  containerNames(): Map<string, string>;
  /** The policy table's rule counters by rule comment (`<policy> <rule>`, `ingress default deny`). */
  policyCounters?: () => Promise<Record<string, { packets: number; bytes: number }>>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly calls: Counter<'method' | 'outcome'>;
  readonly policyLabelWindow: Histogram;
  readonly callSeconds: Histogram<'method' | 'outcome'>;
  readonly repairs: Counter<'kind'>;
  readonly kernelErrors: Counter<'errno'>;
  readonly dnsQueries: Counter<'result'>;
  private readonly warned = new Set<string>();

  constructor(private readonly log: Logger) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'loom_process_' });
    this.calls = new Counter({ name: 'loom_plugin_calls_total', help: 'Plugin calls from Docker, by method and outcome', labelNames: ['method', 'outcome'], registers: [r] });
    this.callSeconds = new Histogram({
      name: 'loom_plugin_call_duration_seconds',
      help: 'Duration of plugin calls as loom handled them',
      labelNames: ['method', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [r],
    });
    this.repairs = new Counter({ name: 'loom_reconciler_repairs_total', help: 'Drift repaired by the reconciler, by kind', labelNames: ['kind'], registers: [r] });
    this.kernelErrors = new Counter({ name: 'loom_kernel_errors_total', help: 'Netlink requests the kernel refused, by errno', labelNames: ['errno'], registers: [r] });
    this.policyLabelWindow = new Histogram({
      name: 'loom_policy_label_window_seconds',
      help: 'From Join until the container\'s labels are in the policy sets (its fail-closed window)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.dnsQueries = new Counter({ name: 'loom_dns_queries_total', help: 'DNS queries of containers on loom overlays: answered by loom, relayed to Docker, refused, failed', labelNames: ['result'], registers: [r] });
  }

  /** Registers the gauges computed at scrape time. */
  attach(src: MetricsSources): void {
    const r = this.registry;
    const log = this.log;
    const warned = this.warned;
    new Gauge({
      name: 'loom_networks',
      help: 'Networks loom holds, by mode',
      labelNames: ['mode'],
      registers: [r],
      collect() {
        this.reset();
        for (const { record } of src.networks.list()) this.inc({ mode: record.overlay ? 'overlay' : 'bridge' });
      },
    });
    new Gauge({
      name: 'loom_endpoints',
      help: 'Endpoints loom holds, by network',
      labelNames: ['network'],
      registers: [r],
      collect() {
        this.reset();
        for (const { record, endpoints } of src.networks.list()) this.set({ network: record.id.slice(0, 12) }, endpoints.length);
      },
    });
    const perPool = (name: string, help: string, value: (p: ReturnType<IpamService['listPools']>[number]) => number): Gauge<string> =>
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'space'],
        registers: [r],
        collect() {
          this.reset();
          for (const p of src.ipam.listPools()) this.set({ pool: p.pool, space: p.addressSpace }, value(p));
        },
      });
    perPool('loom_ipam_pool_used_addresses', 'Allocated addresses per pool', (p) => Number(p.used));
    perPool('loom_ipam_pool_capacity_addresses', 'Assignable addresses per pool', (p) => Number(p.capacity));
    perPool(
      'loom_ipam_pool_utilisation_ratio',
      `Used / capacity per pool (loom_ipam_pool_exhaustion_warning turns 1 above ${EXHAUSTION_WARNING})`,
      (p) => Number(p.used) / Math.max(1, Number(p.capacity)),
    );
    const logCounter = (name: string, help: string, key: 'droppedLines' | 'writeErrors'): Counter =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(logLosses()[key]);
        },
      });
    logCounter('loom_log_lines_dropped_total', 'Log lines dropped because standard output was not read (8 MiB already waiting) or kept failing', 'droppedLines');
    logCounter('loom_log_write_errors_total', 'Writes of log lines to standard output that failed (what waits is tried again every second)', 'writeErrors');
    new Gauge({
      name: 'loom_ipam_pool_exhaustion_warning',
      help: `1 when a pool is more than ${EXHAUSTION_WARNING * 100} % used`,
      labelNames: ['pool', 'space'],
      registers: [r],
      collect() {
        this.reset();
        const pools = src.ipam.listPools();
        // Forget pools that are gone, so the set never outgrows the live pools.
        const live = new Set(pools.map((p) => p.id));
        for (const id of [...warned]) if (!live.has(id)) warned.delete(id);
        for (const p of pools) {
          const hot = Number(p.used) / Math.max(1, Number(p.capacity)) > EXHAUSTION_WARNING;
          this.set({ pool: p.pool, space: p.addressSpace }, hot ? 1 : 0);
          if (hot && !warned.has(p.id)) log.warn({ poolId: p.id, used: String(p.used), capacity: String(p.capacity) }, 'address pool nearly exhausted');
          if (hot) warned.add(p.id);
          else warned.delete(p.id);
        }
      },
    });
    const labelsOf = (): Map<string, { network: string; endpoint: string; container: string }> => {
      const names = src.containerNames();
      const out = new Map<string, { network: string; endpoint: string; container: string }>();
      for (const { record, endpoints } of src.networks.list()) {
        for (const e of endpoints) out.set(e.hostIf, { network: record.id.slice(0, 12), endpoint: e.id.slice(0, 12), container: names.get(e.id) ?? '' });
      }
      return out;
    };
    type Stats = { rxBytes: bigint; txBytes: bigint; rxPackets: bigint; txPackets: bigint };
    // One link dump per scrape, shared by the four traffic gauges (prom-client collects them one
    // after another; a second later, the next scrape reads the kernel again).
    let snapshot: { at: number; rows: Promise<Array<{ labels: { network: string; endpoint: string; container: string }; stats: Stats }>> } | undefined;
    const endpointTraffic = (): NonNullable<typeof snapshot>['rows'] => {
      if (!snapshot || Date.now() - snapshot.at > 1000) {
        const rows = (async () => {
          const labels = labelsOf();
          const out: Awaited<NonNullable<typeof snapshot>['rows']> = [];
          for (const l of await src.kernel.listLinks()) {
            const lab = labels.get(l.name);
            if (lab && l.stats) out.push({ labels: lab, stats: l.stats });
          }
          return out;
        })();
        rows.catch(() => {
          snapshot = undefined;
        });
        snapshot = { at: Date.now(), rows };
      }
      return snapshot.rows;
    };
    // Traffic counters of each endpoint, read from the host end of its veth (rx there = sent by the container).
    const traffic = (name: string, help: string, pick: (s: Stats) => bigint): Gauge<string> =>
      new Gauge({
        name,
        help,
        labelNames: ['network', 'endpoint', 'container'],
        registers: [r],
        async collect() {
          this.reset();
          for (const { labels, stats } of await endpointTraffic()) this.set(labels, Number(pick(stats)));
        },
      });
    const policyCounters = src.policyCounters;
    if (policyCounters) {
      // nft's counters: they restart from 0 when the policy table is replaced (policy changes, loomd start).
      const policyGauge = (name: string, help: string, pick: (c: { packets: number; bytes: number }) => number): Gauge<string> =>
        new Gauge({
          name,
          help,
          labelNames: ['policy', 'rule'],
          registers: [r],
          async collect() {
            this.reset();
            for (const [comment, c] of Object.entries(await policyCounters().catch(() => ({})))) {
              const deny = / default deny$/.test(comment);
              const space = comment.indexOf(' ');
              this.set(deny ? { policy: '', rule: comment } : { policy: comment.slice(0, space), rule: comment.slice(space + 1) }, pick(c));
            }
          },
        });
      policyGauge('loom_policy_rule_packets', 'Packets matched by each network policy rule (allowed) and by the default denies (dropped)', (c) => c.packets);
      policyGauge('loom_policy_rule_bytes', 'Bytes matched by each network policy rule and by the default denies', (c) => c.bytes);
    }
    traffic('loom_endpoint_sent_bytes', 'Bytes the container sent (host veth rx)', (s) => s.rxBytes);
    traffic('loom_endpoint_received_bytes', 'Bytes the container received (host veth tx)', (s) => s.txBytes);
    traffic('loom_endpoint_sent_packets', 'Packets the container sent', (s) => s.rxPackets);
    traffic('loom_endpoint_received_packets', 'Packets the container received', (s) => s.txPackets);
    const agent = src.agent;
    if (agent) {
      new Gauge({
        name: 'loom_overlay_peers',
        help: 'Other hosts registered in the cluster',
        registers: [r],
        collect() {
          this.set([...agent.hosts.keys()].filter((h) => h !== agent.hostId).length);
        },
      });
      new Gauge({
        name: 'loom_overlay_peer_lease_age_seconds',
        help: 'Seconds since each host registered its current lease',
        labelNames: ['host', 'vtep'],
        registers: [r],
        collect() {
          this.reset();
          for (const h of agent.hosts.values()) this.set({ host: h.hostId, vtep: h.vtep }, (Date.now() - Date.parse(h.startedAt)) / 1000);
        },
      });
      new Gauge({
        name: 'loom_overlay_remote_entries',
        help: 'Remote endpoints programmed as static FDB and neighbour entries, by overlay',
        labelNames: ['overlay'],
        registers: [r],
        collect() {
          this.reset();
          for (const [key, eps] of agent.remote) this.set({ overlay: key }, eps.size);
        },
      });
      new Gauge({
        name: 'loom_cluster_publish_backlog',
        help: 'Writes to etcd waiting (etcd unreachable)',
        registers: [r],
        collect() {
          this.set(agent.backlog);
        },
      });
      new Gauge({
        name: 'loom_cluster_store_up',
        help: '1 while etcd answers, 0 while it is known to be unreachable (cluster work fails fast or is deferred)',
        registers: [r],
        collect() {
          this.set(agent.health.isDown ? 0 : 1);
        },
      });
      new Gauge({
        name: 'loom_cluster_store_outages',
        help: 'Times etcd became unreachable since loomd started',
        registers: [r],
        collect() {
          this.set(agent.health.view().outages);
        },
      });
      new Gauge({
        name: 'loom_cluster_reconnect_attempts',
        help: 'Attempts of the reconnect loop (lease and watches) since loomd started',
        registers: [r],
        collect() {
          this.set(agent.session.stats.attempts);
        },
      });
      const conflicts = src.claimConflicts;
      if (conflicts) {
        new Gauge({
          name: 'loom_cluster_claim_conflicts',
          help: 'Subnets used on this host whose cluster-wide claim belongs to another host or an overlay',
          registers: [r],
          collect() {
            this.set(conflicts.size);
          },
        });
      }
    }
  }

  observeCall(e: { method: string; outcome: 'ok' | 'error'; durationMs: number }): void {
    this.calls.inc({ method: e.method, outcome: e.outcome });
    this.callSeconds.observe({ method: e.method, outcome: e.outcome }, e.durationMs / 1000);
  }

  app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.get('/metrics', async (_req: Request, res: Response) => {
      res.type(this.registry.contentType).send(await this.registry.metrics());
    });
    return app;
  }
}
