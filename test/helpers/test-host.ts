/**
 * A throwaway "Docker host" on this machine: its own network namespace (FORWARD
 * policy DROP, like a real host), a persistent mount namespace (own sysfs,
 * /run/docker/plugins, /etc/docker), a private dockerd with its own data-root
 * and socket, optionally loomd, and an "outside" namespace behind an uplink that
 * plays the rest of the world (198.18.254.1). Everything is removed by destroy(),
 * also after failures; only processes started here are ever signalled.
 *
 * The pieces live in host/: layout.ts (names and paths), namespaces.ts, engine.ts (dockerd),
 * images.ts, loomd.ts, reaper.ts (what killed runs left behind).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { killAndWait, pidAlive, run, RunResult, runOk, sleep, statFields, waitFor } from './run';
import { Engine, engineFromEnv } from './engines';
import { unixRequest } from './unix-http';
import { Dockerd, dockerCli } from './host/engine';
import { busyboxTar, toolsTar } from './host/images';
import { enterHost, HostLayout, hostLayout } from './host/layout';
import { ExtraLoomd, readLog, spawnLoomd, startExtraLoomd } from './host/loomd';
import { attachUnderlay, createNamespaces, removeNamespaces, spawnInHost, UnderlayLink } from './host/namespaces';
import { killLeftovers, sweepAbandoned } from './host/reaper';

export { OUTSIDE_IP, REPO, ROOT, UPLINK_IP } from './host/layout';
export { busyboxTar } from './host/images';
export type { ExtraLoomd } from './host/loomd';

export interface TestHostOptions {
  /** Extra dockerd flags (e.g. --live-restore). */
  dockerdArgs?: string[];
  /** Environment for loomd (LOOM_DEFAULT_POOLS etc.). */
  loomEnv?: Record<string, string>;
  /** Driver name: the socket file name (default "loom"). */
  driverName?: string;
  /**
   * Where loomd's admin socket is, relative to the host's directory (default admin.sock): the
   * socket loomState() and loomOwner() ask. A managed plugin's lives in its state mount.
   */
  adminSocket?: string;
  engine?: Engine;
  /** Multi-host tests: a veth "underlay0" into a shared underlay namespace's bridge. */
  underlay?: UnderlayLink;
  /**
   * The host's /etc/resolv.conf (bind-mounted in its mount namespace before dockerd starts), e.g.
   * "nameserver 198.18.254.1\n" for a DNS server the test runs in the outside namespace
   * (outside-dns.ts). Tests that send DNS must set it: never the machine's own resolver.
   */
  resolvConf?: string;
}

export class TestHost {
  readonly name: string;
  readonly netns: string;
  readonly outNetns: string;
  readonly dir: string;
  readonly mntFile: string;
  readonly dockerSock: string;
  readonly pluginDir: string;
  readonly stateDir: string;
  /** loomd's admin socket (TestHostOptions.adminSocket). */
  readonly adminSocket: string;
  readonly engine: Engine;
  readonly driver: string;
  readonly docker: Dockerode;
  /** The first loomd's PID while it runs (tests that kill it themselves reset it). */
  loomdPid: number | undefined;
  private readonly layout: HostLayout;
  private readonly dockerd: Dockerd;
  private readonly loomEnv: Record<string, string>;

  private constructor(name: string, opts: TestHostOptions) {
    const l = hostLayout(name, opts.adminSocket);
    this.layout = l;
    this.name = name;
    this.netns = l.netns;
    this.outNetns = l.outNetns;
    this.dir = l.dir;
    this.mntFile = l.mntFile;
    this.dockerSock = l.dockerSock;
    this.pluginDir = l.pluginDir;
    this.stateDir = l.stateDir;
    this.adminSocket = l.adminSocket;
    this.engine = opts.engine ?? engineFromEnv();
    this.driver = opts.driverName ?? 'loom';
    this.loomEnv = opts.loomEnv ?? {};
    this.dockerd = new Dockerd(l, this.engine, opts.dockerdArgs ?? []);
    this.docker = new Dockerode({ socketPath: this.dockerSock, timeout: 120_000 });
  }

  /** Removes what test runs killed before their clean-up left behind (once per test process): see host/reaper.ts. */
  static sweepAbandoned(): Promise<void> {
    return sweepAbandoned((name) => new TestHost(name, {}).destroy());
  }

  static async create(opts: TestHostOptions = {}): Promise<TestHost> {
    await TestHost.sweepAbandoned();
    const host = new TestHost(randomBytes(3).toString('hex'), opts);
    try {
      await createNamespaces(host.layout);
      if (opts.underlay) await attachUnderlay(host.layout, opts.underlay);
      if (opts.resolvConf !== undefined) await host.setResolvConf(opts.resolvConf);
      await host.startDockerd();
      await host.cliOk(['import', '-c', 'CMD ["/bin/sh"]', await busyboxTar(), 'local/busybox']);
    } catch (err) {
      await host.destroy();
      throw err;
    }
    return host;
  }

  /**
   * Keeps this host after this process exits (`npm run cluster`'s private engine): its owner stamp
   * names its own dockerd from now on, so sweeps of later runs leave it alone while that dockerd
   * runs, and remove it once it is gone. `adopt` finds it again in another process.
   */
  detach(): void {
    const pid = this.dockerd.pid;
    const start = pid === undefined ? undefined : statFields(pid)?.[19];
    if (pid === undefined || start === undefined) throw new Error(`test host ${this.name}: its dockerd is not running`);
    fs.writeFileSync(this.layout.ownerFile, `${pid} ${start}`);
  }

  /** A host a detached one left (its name, engine and dockerd PID), e.g. to destroy() it. */
  static adopt(name: string, engine: Engine, dockerdPid: number | undefined): TestHost {
    if (!/^[0-9a-f]{6}$/.test(name)) throw new Error(`not a test host name: ${name}`);
    const host = new TestHost(name, { engine });
    host.dockerd.pid = dockerdPid;
    return host;
  }

  /** The driver's plugin socket, as this test process sees it. */
  get socket(): string {
    return path.join(this.pluginDir, `${this.driver}.sock`);
  }

  // ---- commands in the host ----------------------------------------------------------------

  /** Bind-mounts a file with `text` over /etc/resolv.conf inside the host's mount namespace (gone with it). */
  async setResolvConf(text: string): Promise<void> {
    const file = path.join(this.dir, 'resolv.conf');
    fs.writeFileSync(file, text);
    await this.execOk(['mount', '--bind', file, '/etc/resolv.conf']);
  }

  /** Runs a command inside the host's network and mount namespaces. */
  exec(cmd: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    return run('nsenter', [...enterHost(this.layout), ...cmd], opts);
  }

  async execOk(cmd: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0) throw new Error(`${cmd.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** Starts a long-running helper process (etcd...) inside this host's namespaces; returns its PID. */
  spawnService(cmd: string[], logName: string): number {
    return spawnInHost(this.layout, cmd, path.join(this.dir, logName));
  }

  /** Container interface facts inside the host namespace (links, addresses) as `ip -j` JSON. */
  async ipJson<T = unknown>(args: string[]): Promise<T> {
    return JSON.parse(await runOk('ip', ['-n', this.netns, '-j', ...args])) as T;
  }

  // ---- the engine --------------------------------------------------------------------------

  /** The dockerd's PID while it runs. */
  get dockerdPid(): number | undefined {
    return this.dockerd.pid;
  }

  /** Starts dockerd; `wait: false` returns at once (dockerd may wait on a plugin that starts later): see waitDockerd. */
  startDockerd(extraArgs?: string[], opts: { wait?: boolean } = {}): Promise<void> {
    return this.dockerd.start(extraArgs, opts);
  }

  /** Waits (bounded) until dockerd answers its API. */
  waitDockerd(timeoutMs = 60_000): Promise<void> {
    return this.dockerd.waitReady(timeoutMs);
  }

  /** Stops dockerd and waits for its managed containerd too (host/engine.ts). */
  stopDockerd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.dockerd.stop(signal);
  }

  /** The docker CLI matching the engine, against this host's dockerd. */
  cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return dockerCli(this.layout, this.engine, args, opts);
  }

  async cliOk(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** A container's address on `network` as Docker reports it (IPv4, or the global IPv6 one). */
  containerIp(container: string, network: string, family: 4 | 6 = 4): Promise<string> {
    const field = family === 6 ? 'GlobalIPv6Address' : 'IPAddress';
    return this.cliOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").${field}}}`, container]);
  }

  /**
   * `local/tools`: busybox plus iperf3 and socat (UDP servers, throughput) with the
   * libraries they link, copied from this machine. Built once per machine, imported on demand.
   */
  async importTools(): Promise<void> {
    await this.cliOk(['import', '-c', 'CMD ["/bin/sh"]', await toolsTar(), 'local/tools']);
  }

  // ---- containers --------------------------------------------------------------------------

  /** Removes every container of this host's engine (bounded). */
  async removeContainers(): Promise<void> {
    const ids = (await this.cli(['ps', '-aq'], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
    if (ids.length) await this.cli(['rm', '-f', ...ids], { timeoutMs: 120_000 });
  }

  /** Waits (bounded) until every named container runs. */
  async waitRunning(names: string[], timeoutMs: number): Promise<void> {
    await waitFor(`${names.join(', ')} running`, async () => {
      const running = (await this.cli(['ps', '--format', '{{.Names}}'])).stdout.split('\n');
      return names.every((n) => running.includes(n));
    }, timeoutMs, 250);
  }

  /** Runs a command inside a running container. */
  async inContainer(container: string, cmd: string[], timeoutMs = 30_000): Promise<RunResult> {
    return this.cli(['exec', container, ...cmd], { timeoutMs });
  }

  /** `ping -c1 -W1` from a container, true on a reply. */
  async ping(container: string, target: string, tries = 3): Promise<boolean> {
    for (let i = 0; i < tries; i++) {
      const family = target.includes(':') ? ['-6'] : [];
      const r = await this.inContainer(container, ['ping', ...family, '-c', '1', '-W', '1', target], 10_000);
      if (r.code === 0) return true;
      await sleep(200);
    }
    return false;
  }

  // ---- loomd -------------------------------------------------------------------------------

  async startLoomd(extraEnv: Record<string, string> = {}): Promise<void> {
    const place = { driver: this.driver, stateDir: this.stateDir, adminSocket: this.adminSocket, logFile: path.join(this.dir, 'loomd.log') };
    this.loomdPid = await spawnLoomd(this.layout, place, { ...this.loomEnv, ...extraEnv });
  }

  /**
   * A second loomd on this host, as when a legacy plugin runs beside a managed one: driver
   * (and socket) `driver`, its own state directory, admin socket and log under this host's
   * directory. destroy() stops it with everything else that runs in the host's namespace.
   */
  startExtraLoomd(driver: string, extraEnv: Record<string, string> = {}): Promise<ExtraLoomd> {
    return startExtraLoomd(this.layout, driver, extraEnv);
  }

  async stopLoomd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.loomdPid !== undefined) await killAndWait(this.loomdPid, signal, 20_000);
    this.loomdPid = undefined;
  }

  loomdLog(): string {
    return readLog(path.join(this.dir, 'loomd.log'));
  }

  /** loomd's own view (networks, IPAM pools) through its admin socket. */
  async loomState(): Promise<{ networks: Array<Record<string, any>>; pools: Array<Record<string, any>> }> {
    const networks = await unixRequest(this.adminSocket, 'GET', '/v1/networks');
    const pools = await unixRequest(this.adminSocket, 'GET', '/v1/ipam');
    return { networks: networks.json, pools: pools.json };
  }

  /** Who the host's loomd is: its owner mark and the names of its firewall objects (admin /v1/status). */
  async loomOwner(adminSocket = this.adminSocket): Promise<{ instance: string; mark: string; nftTable: string; iptablesChain: string }> {
    return (await unixRequest(adminSocket, 'GET', '/v1/status')).json.owner;
  }

  /** Removes every loom firewall object of any loomd (nft tables `loom*`, iptables chains `LOOM*` and their jumps): a "reboot". */
  async flushLoomFirewall(): Promise<void> {
    for (const m of (await this.execOk(['nft', 'list', 'tables'])).matchAll(/^table inet (loom\S*)$/gm)) await this.exec(['nft', 'delete', 'table', 'inet', m[1] as string]);
    for (const tool of ['iptables', 'ip6tables']) {
      for (const m of (await this.execOk([tool, '-w', '-S'])).matchAll(/^-N (LOOM\S*)$/gm)) {
        await this.exec([tool, '-w', '-D', 'FORWARD', '-j', m[1] as string]);
        await this.exec([tool, '-w', '-F', m[1] as string]);
        await this.exec([tool, '-w', '-X', m[1] as string]);
      }
    }
  }

  // ---- clean-up ----------------------------------------------------------------------------

  /**
   * The namespaces loomd made for overlay networks (`ip netns add loom-<instance>-<id>` in this
   * host's mount namespace, docs/overlay.md) that are still there: only those mounted in this
   * host's mount namespace are this host's (the files under /run/netns are shared with the machine).
   */
  async removeOverlayNamespaces(): Promise<void> {
    const r = await this.exec(['findmnt', '-rn', '-o', 'TARGET']);
    for (const m of r.stdout.matchAll(/^\/run\/netns\/(loom-[0-9a-z]+-[0-9a-z]+)$/gm)) await this.exec(['ip', 'netns', 'del', m[1] as string]);
  }

  /** Removes everything of this host; every step runs whatever the others did, failures are logged together. */
  async destroy(): Promise<void> {
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${String(err)}`);
      }
    };
    if (this.dockerdPid !== undefined && pidAlive(this.dockerdPid)) {
      await attempt('remove containers', () => this.removeContainers());
      await attempt('stop dockerd', () => this.stopDockerd());
    }
    await attempt('stop loomd', () => this.stopLoomd());
    await attempt('stop leftover engine processes', () => killLeftovers(this.layout));
    await attempt('remove overlay namespaces', () => this.removeOverlayNamespaces());
    await removeNamespaces(this.layout, attempt);
    await attempt('remove files', async () => {
      fs.rmSync(this.layout.ownerFile, { force: true }); // kept logs are not a host to sweep
      if (process.env.LOOM_KEEP_TEST_LOGS) return;
      await run('umount', ['-R', '-l', path.join(this.dir, 'data')]);
      fs.rmSync(this.dir, { recursive: true, force: true });
    });
    if (errors.length) console.warn(`test host ${this.name} cleanup: ${errors.join('; ')}`);
  }
}
