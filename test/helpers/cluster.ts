/**
 * Several Docker hosts on one machine for multi-host tests: an underlay namespace
 * with a bridge (no FORWARD rules in the way), N TestHosts attached to it at
 * 198.18.0.<i>/24, a 3-member etcd cluster (member i runs in host i's namespace),
 * and loomd on every host joined to it. destroy() removes everything.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killAndWait, pidAlive, run, runOk, waitFor } from './run';
import { ownerStamp } from './owner';
import { ROOT, TestHost, TestHostOptions } from './test-host';
import { clusterOwnerFile } from './host/reaper';

export interface EtcdMember {
  name: string;
  host: TestHost;
  ip: string;
  pid: number | undefined;
  dataDir: string;
  /** SIGSTOPped by pauseEtcd (destroy continues it before stopping it). */
  paused?: boolean;
}

export class TestCluster {
  readonly hosts: TestHost[] = [];
  readonly etcd: EtcdMember[] = [];
  private constructor(
    readonly id: string,
    readonly underlayNs: string,
  ) {}

  /** Marks the underlay namespace as this test process's (see host/reaper.ts). */
  get ownerFile(): string {
    return clusterOwnerFile(this.underlayNs);
  }

  get endpoints(): string {
    return this.etcd.map((m) => `http://${m.ip}:2379`).join(',');
  }

  /**
   * `legacyLoomd: false` leaves loomd out (tests that install loom as a managed plugin, whose
   * hosts get `host`: MANAGED_PLUGIN_HOST).
   */
  static async create(
    n: number,
    opts: { underlayMtu?: number[]; loomEnv?: Record<string, string>; legacyLoomd?: boolean; host?: Pick<TestHostOptions, 'driverName' | 'adminSocket' | 'resolvConf' | 'dockerdArgs'> } = {},
  ): Promise<TestCluster> {
    const id = randomBytes(2).toString('hex');
    const c = new TestCluster(id, `loomt-u${id}`);
    try {
      await TestHost.sweepAbandoned();
      fs.mkdirSync(ROOT, { recursive: true, mode: 0o700 });
      fs.writeFileSync(c.ownerFile, ownerStamp());
      await runOk('ip', ['netns', 'add', c.underlayNs]);
      await runOk('ip', ['-n', c.underlayNs, 'link', 'add', 'ubr', 'type', 'bridge']);
      await runOk('ip', ['-n', c.underlayNs, 'link', 'set', 'ubr', 'up']);
      await runOk('ip', ['-n', c.underlayNs, 'link', 'set', 'lo', 'up']);
      for (let i = 1; i <= n; i++) {
        c.hosts.push(
          await TestHost.create({
            underlay: { netns: c.underlayNs, bridge: 'ubr', cidr: `198.18.0.${i}/24`, mtu: opts.underlayMtu?.[i - 1] ?? 1500 },
            ...opts.host,
          }),
        );
      }
      for (let i = 0; i < Math.min(3, n); i++) {
        const host = c.hosts[i] as TestHost;
        c.etcd.push({ name: `m${i + 1}`, host, ip: `198.18.0.${i + 1}`, pid: undefined, dataDir: path.join(host.dir, 'etcd') });
      }
      for (const m of c.etcd) c.startEtcd(m);
      await c.waitEtcdHealthy();
      for (const [i, h] of opts.legacyLoomd === false ? [] : c.hosts.entries()) {
        await h.startLoomd({
          LOOM_ETCD_ENDPOINTS: c.endpoints,
          LOOM_ADVERTISE_ADDRESS: `198.18.0.${i + 1}`,
          LOOM_LEASE_TTL: '4',
          // A dead host's endpoints go 5 s after its lease (tests of outages set more).
          LOOM_PEER_GRACE: '5',
          ...opts.loomEnv,
        });
      }
      if (opts.legacyLoomd !== false) {
        // Every loomd registered: overlays created from now on know every host's underlay MTU.
        await waitFor('every host registered in etcd', async () => {
          const out = await c.etcdctl(['get', '--prefix', '--keys-only', '/loom/v1/hosts/']);
          return out.split('\n').filter((l) => l.startsWith('/loom/v1/hosts/')).length === n;
        }, 30_000, 200);
      }
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** Starts a member; `existing` restarts it on its data dir as a member of the running cluster. */
  startEtcd(m: EtcdMember, opts: { existing?: boolean } = {}): void {
    fs.mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
    const initial = this.etcd.map((x) => `${x.name}=http://${x.ip}:2380`).join(',');
    m.pid = m.host.spawnService(
      [
        'etcd',
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', `http://${m.ip}:2379`,
        '--advertise-client-urls', `http://${m.ip}:2379`,
        '--listen-peer-urls', `http://${m.ip}:2380`,
        '--initial-advertise-peer-urls', `http://${m.ip}:2380`,
        '--initial-cluster', initial,
        '--initial-cluster-token', `loomtest-${this.id}`,
        '--initial-cluster-state', opts.existing ? 'existing' : 'new',
        '--heartbeat-interval', '100',
        '--election-timeout', '1000',
      ],
      'etcd.log',
    );
  }

  async stopEtcd(m: EtcdMember, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (m.pid && m.paused) process.kill(m.pid, 'SIGCONT');
    m.paused = false;
    if (m.pid) await killAndWait(m.pid, signal);
    m.pid = undefined;
  }

  /** etcd hung: every member SIGSTOPped (connections stay open, nothing answers). */
  pauseEtcd(): void {
    for (const m of this.etcd) {
      if (!m.pid || m.paused) continue;
      process.kill(m.pid, 'SIGSTOP');
      m.paused = true;
    }
  }

  resumeEtcd(): void {
    for (const m of this.etcd) {
      if (!m.pid || !m.paused) continue;
      process.kill(m.pid, 'SIGCONT');
      m.paused = false;
    }
  }

  /**
   * Cuts `host` off from etcd: in its namespace, nftables drops traffic to and from etcd's
   * client port (its loomd reaches no member; the member living there stays in the cluster).
   */
  async partitionFromEtcd(host: TestHost): Promise<void> {
    const rules = [
      'table inet loomfault {',
      '  chain out { type filter hook output priority -10; policy accept; tcp dport 2379 drop; }',
      '  chain in { type filter hook input priority -10; policy accept; tcp sport 2379 drop; }',
      '}',
    ].join('\n');
    await runOk('nsenter', [`--net=/run/netns/${host.netns}`, 'nft', '-f', '-'], { input: rules + '\n' });
  }

  async healPartition(host: TestHost): Promise<void> {
    await run('nsenter', [`--net=/run/netns/${host.netns}`, 'nft', 'delete', 'table', 'inet', 'loomfault']);
  }

  async etcdctl(args: string[]): Promise<string> {
    const live = this.etcd.filter((m) => m.pid && pidAlive(m.pid));
    const h = (live[0] ?? this.etcd[0]) as EtcdMember;
    return (await h.host.exec(['etcdctl', `--endpoints=${live.map((m) => `http://${m.ip}:2379`).join(',')}`, ...args], { timeoutMs: 15_000 })).stdout;
  }

  async waitEtcdHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('etcd quorum', async () => {
      const r = await (this.etcd[0] as EtcdMember).host.exec(['etcdctl', `--endpoints=${this.endpoints}`, 'endpoint', 'health'], { timeoutMs: 10_000 });
      return r.code === 0;
    }, timeoutMs, 300);
  }

  /**
   * Containers go first, while loomd and etcd still answer (otherwise dockerd retries the
   * plugin for every endpoint); then every loomd, then etcd (no loomd left to log failed
   * writes), then the hosts.
   */
  async destroy(): Promise<void> {
    try {
      this.resumeEtcd(); // a test that failed mid-outage: let loomd tidy up while it stops
    } catch {
      // members already gone
    }
    await Promise.all(
      this.hosts.map((h) => h.removeContainers()),
    ).catch(() => undefined);
    for (const h of this.hosts) await h.stopLoomd().catch(() => undefined);
    for (const m of this.etcd) await this.stopEtcd(m, 'SIGTERM').catch(() => undefined);
    for (const h of this.hosts) await h.destroy();
    await run('ip', ['netns', 'del', this.underlayNs]);
    fs.rmSync(this.ownerFile, { force: true });
  }
}
