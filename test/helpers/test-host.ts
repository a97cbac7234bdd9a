/**
 * A throwaway "Docker host" on this machine: its own network namespace (FORWARD
 * policy DROP, like a real host), a persistent mount namespace (own sysfs,
 * /run/docker/plugins, /etc/docker), a private dockerd with its own data-root
 * and socket, optionally loomd, and an "outside" namespace behind an uplink that
 * plays the rest of the world (198.18.254.1). Everything is removed by destroy(),
 * also after failures; only processes started here are ever signalled.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Dockerode from 'dockerode';
import { killAndWait, pidAlive, run, RunResult, runOk, sleep, statFields, waitFor } from './run';
import { Engine, engineFromEnv } from './engines';
import { unixRequest } from './unix-http';
import { LOOMD_NODE_FLAGS } from '../../driver/node-flags';
import { ownerAlive, ownerStamp } from './owner';

/** The repository root (this file runs from test/helpers or from dist-tools/test/helpers). */
export const REPO = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
export const ROOT = '/tmp/loom-e2e';
const MNT_DIR = '/run/loom-test/mnt';
export const OUTSIDE_IP = '198.18.254.1';
export const UPLINK_IP = '198.18.254.2';

export interface TestHostOptions {
  /** Extra dockerd flags (e.g. --live-restore). */
  dockerdArgs?: string[];
  /** Environment for loomd (LOOM_DEFAULT_POOLS etc.). */
  loomEnv?: Record<string, string>;
  /** Driver name: the socket file name (default "loom"). */
  driverName?: string;
  engine?: Engine;
  /** Multi-host tests: a veth "underlay0" into a shared underlay namespace's bridge. */
  underlay?: { netns: string; bridge: string; cidr: string; mtu?: number };
}

/** A further loomd on a test host (TestHost.startExtraLoomd). */
export interface ExtraLoomd {
  driver: string;
  socket: string;
  stateDir: string;
  adminSocket: string;
  logFile: string;
  pid: number;
  /** Starts it again (same state, same names) after stop(). */
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  log(): string;
}

export class TestHost {
  readonly netns: string;
  readonly outNetns: string;
  readonly dir: string;
  readonly mntFile: string;
  readonly dockerSock: string;
  readonly pluginDir: string;
  readonly stateDir: string;
  readonly engine: Engine;
  readonly driver: string;
  readonly docker: Dockerode;
  dockerdPid: number | undefined;
  loomdPid: number | undefined;
  private dockerdArgs: string[];
  private readonly loomEnv: Record<string, string>;

  private constructor(
    readonly name: string,
    opts: TestHostOptions,
  ) {
    this.netns = `loomt-${name}`;
    this.outNetns = `loomt-${name}-o`;
    this.dir = path.join(ROOT, name);
    this.mntFile = path.join(MNT_DIR, name);
    this.dockerSock = path.join(this.dir, 'docker.sock');
    this.pluginDir = path.join(this.dir, 'plugins');
    this.stateDir = path.join(this.dir, 'loom-state');
    this.engine = opts.engine ?? engineFromEnv();
    this.driver = opts.driverName ?? 'loom';
    this.dockerdArgs = opts.dockerdArgs ?? [];
    this.loomEnv = opts.loomEnv ?? {};
    this.docker = new Dockerode({ socketPath: this.dockerSock, timeout: 120_000 });
  }

  /** Who owns this host (see sweepAbandoned). */
  private get ownerFile(): string {
    return path.join(this.dir, 'owner');
  }

  get adminSocket(): string {
    return path.join(this.dir, 'admin.sock');
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

  get socket(): string {
    return path.join(this.pluginDir, `${this.driver}.sock`);
  }

  private static swept: Promise<void> | undefined;

  /**
   * Removes what test runs killed before their clean-up left behind (once per test process):
   * hosts whose owner file names a process that is gone, and the underlay namespaces of such
   * clusters. Hosts of live runs and anything without an owner file are left alone.
   */
  static sweepAbandoned(): Promise<void> {
    TestHost.swept ??= (async () => {
      if (!fs.existsSync(ROOT)) return;
      for (const entry of fs.readdirSync(ROOT)) {
        const host = /^[0-9a-f]{6}$/.test(entry) ? new TestHost(entry, {}) : undefined;
        const stampFile = host ? host.ownerFile : /^cluster-loomt-u[0-9a-f]{4}\.owner$/.test(entry) ? path.join(ROOT, entry) : undefined;
        if (!stampFile || !fs.existsSync(stampFile) || ownerAlive(fs.readFileSync(stampFile, 'utf8'))) continue;
        if (host) {
          console.warn(`removing test host ${entry}, left behind by a test run that was killed`);
          await host.destroy();
        } else {
          const ns = entry.slice('cluster-'.length, -'.owner'.length);
          console.warn(`removing underlay namespace ${ns}, left behind by a test run that was killed`);
          await run('ip', ['netns', 'del', ns]);
          fs.rmSync(stampFile, { force: true });
        }
      }
    })();
    return TestHost.swept;
  }

  static async create(opts: TestHostOptions = {}): Promise<TestHost> {
    await TestHost.sweepAbandoned();
    const host = new TestHost(randomBytes(3).toString('hex'), opts);
    try {
      await host.setupNamespaces();
      if (opts.underlay) await host.attachUnderlay(opts.underlay);
      await host.startDockerd();
      await host.importBusybox();
    } catch (err) {
      await host.destroy();
      throw err;
    }
    return host;
  }

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

  /** Runs a command inside the host's network and mount namespaces. */
  exec(cmd: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    return run('nsenter', [`--net=/run/netns/${this.netns}`, `--mount=${this.mntFile}`, '--', ...cmd], opts);
  }

  async execOk(cmd: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0) throw new Error(`${cmd.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** The docker CLI matching the engine, against this host's dockerd. */
  cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run(this.engine.client, ['-H', `unix://${this.dockerSock}`, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, env: this.engine.env });
  }

  async cliOk(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  private async setupNamespaces(): Promise<void> {
    fs.mkdirSync(this.pluginDir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(path.join(this.dir, 'cg'), { recursive: true });
    fs.chmodSync(ROOT, 0o700);
    fs.writeFileSync(this.ownerFile, ownerStamp());
    fs.mkdirSync(MNT_DIR, { recursive: true });
    if ((await run('mountpoint', ['-q', MNT_DIR])).code !== 0) {
      await runOk('mount', ['--bind', MNT_DIR, MNT_DIR]);
      await runOk('mount', ['--make-private', MNT_DIR]);
    }
    fs.writeFileSync(this.mntFile, '');
    fs.mkdirSync('/run/docker/plugins', { recursive: true });
    fs.mkdirSync('/etc/docker', { recursive: true });
    fs.mkdirSync('/run/containerd', { recursive: true });
    await runOk('ip', ['netns', 'add', this.netns]);
    await runOk('ip', ['netns', 'add', this.outNetns]);
    const n = ['-n', this.netns];
    const o = ['-n', this.outNetns];
    await runOk('ip', [...n, 'link', 'set', 'lo', 'up']);
    await runOk('ip', [...o, 'link', 'set', 'lo', 'up']);
    await runOk('ip', [...n, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', this.outNetns]);
    await runOk('ip', [...n, 'addr', 'add', `${UPLINK_IP}/24`, 'dev', 'uplink0']);
    await runOk('ip', [...o, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'wan0']);
    await runOk('ip', [...n, 'link', 'set', 'uplink0', 'up']);
    await runOk('ip', [...o, 'link', 'set', 'wan0', 'up']);
    await runOk('ip', [...n, 'route', 'add', 'default', 'via', OUTSIDE_IP]);
    // A real host: FORWARD policy DROP (Debian with Docker installed has it), forwarding off until someone needs it.
    await runOk('nsenter', [`--net=/run/netns/${this.netns}`, 'iptables', '-w', '-P', 'FORWARD', 'DROP']);
    await runOk('nsenter', [`--net=/run/netns/${this.netns}`, 'ip6tables', '-w', '-P', 'FORWARD', 'DROP']);
    const cg = path.join(this.dir, 'cg');
    const script = [
      'set -e',
      `mount --rbind /sys/fs/cgroup ${cg}`,
      'mount -t sysfs sysfs /sys',
      `mount --move ${cg} /sys/fs/cgroup`,
      `mount --bind ${this.pluginDir} /run/docker/plugins`,
      'mount -t tmpfs tmpfs /etc/docker',
      // containerd keeps shim sockets under /run/containerd/s whatever its root: one per host.
      'mount -t tmpfs tmpfs /run/containerd',
    ].join('\n');
    await runOk('nsenter', [`--net=/run/netns/${this.netns}`, 'unshare', `--mount=${this.mntFile}`, '--propagation', 'private', 'sh', '-c', script]);
  }

  private async attachUnderlay(u: { netns: string; bridge: string; cidr: string; mtu?: number }): Promise<void> {
    const peer = `u${this.name}`;
    await runOk('ip', ['-n', this.netns, 'link', 'add', 'underlay0', 'type', 'veth', 'peer', 'name', peer, 'netns', u.netns]);
    const mtu = String(u.mtu ?? 1500);
    await runOk('ip', ['-n', this.netns, 'link', 'set', 'underlay0', 'mtu', mtu, 'up']);
    await runOk('ip', ['-n', this.netns, 'addr', 'add', u.cidr, 'dev', 'underlay0']);
    await runOk('ip', ['-n', u.netns, 'link', 'set', peer, 'mtu', mtu, 'master', u.bridge, 'up']);
  }

  /** Starts a long-running helper process (etcd...) inside this host's namespaces; returns its PID. */
  spawnService(cmd: string[], logName: string): number {
    return this.spawnInHost(cmd, path.join(this.dir, logName));
  }

  private spawnInHost(cmd: string[], logFile: string, env?: NodeJS.ProcessEnv): number {
    const out = fs.openSync(logFile, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${this.netns}`, `--mount=${this.mntFile}`, '--', ...cmd], {
      detached: true,
      stdio: ['ignore', out, out],
      env: env ?? process.env,
    });
    fs.closeSync(out);
    child.unref();
    if (!child.pid) throw new Error(`could not start ${cmd[0]}`);
    return child.pid;
  }

  /** Starts dockerd; `wait: false` returns at once (dockerd may wait on a plugin that starts later): see waitDockerd. */
  async startDockerd(extraArgs?: string[], opts: { wait?: boolean } = {}): Promise<void> {
    if (extraArgs) this.dockerdArgs = extraArgs;
    const pidfile = path.join(this.dir, 'docker.pid');
    // A SIGKILLed dockerd leaves its pidfile; the next start refuses while it exists.
    if (this.dockerdPid === undefined || !pidAlive(this.dockerdPid)) fs.rmSync(pidfile, { force: true });
    // Its managed containerd dies with a SIGKILLed dockerd (parent-death signal) but stays a zombie
    // until PID 1 reaps it (slowly here); a dockerd that finds its pidfile waits for the zombie's socket
    // (~10 s with containerd 2.1, a minute with 1.6). Forget a dead containerd; one still exiting
    // (stopDockerd waits for that) is given a moment, a live one is adopted by the new dockerd.
    const ctrPid = this.containerdPid();
    if (ctrPid !== undefined) await this.waitGone([ctrPid], 5_000);
    if (ctrPid === undefined || !pidAlive(ctrPid)) fs.rmSync(this.containerdPidfile, { force: true });
    this.dockerdPid = this.spawnInHost(
      [
        this.engine.dockerd,
        '--data-root', path.join(this.dir, 'data'),
        '--exec-root', path.join(this.dir, 'exec'),
        '-H', `unix://${this.dockerSock}`,
        '--pidfile', pidfile,
        ...this.engine.dockerdArgs,
        ...this.dockerdArgs,
      ],
      path.join(this.dir, 'dockerd.log'),
      this.engine.env,
    );
    if (opts.wait !== false) await this.waitDockerd();
  }

  /** Waits (bounded) until dockerd answers its API. */
  async waitDockerd(timeoutMs = 60_000): Promise<void> {
    await waitFor('dockerd to answer', async () => (await this.cli(['version'], { timeoutMs: 5_000 })).code === 0, timeoutMs, 100);
  }

  /**
   * Stops dockerd and waits until its managed containerd has exited too: after SIGKILL, containerd
   * (2.x more slowly than 1.6) is still exiting when dockerd is gone, and a dockerd started in that
   * window takes it for a running containerd and waits ~10 s for it. With --live-restore the
   * container shims stay, as on a real host.
   */
  async stopDockerd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.dockerdPid === undefined) return;
    const ctrPid = this.containerdPid();
    await killAndWait(this.dockerdPid, signal, 60_000);
    if (ctrPid !== undefined) await this.waitGone([ctrPid], 10_000);
  }

  private get containerdPidfile(): string {
    return path.join(this.dir, 'exec', 'containerd', 'containerd.pid');
  }

  /** The PID in the managed containerd's pidfile, if that process still exists (zombie or not). */
  private containerdPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.containerdPidfile, 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Waits (bounded) until none of `pids` is alive; a zombie counts as gone. */
  private async waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (pids.some(pidAlive)) {
      if (Date.now() > deadline) return false;
      await sleep(20);
    }
    return true;
  }

  /**
   * Processes this host's engine left behind (containerd, shims and the containers under them, e.g.
   * after a test failed while dockerd was down or ran with --live-restore): every process whose
   * command line names this host's private directory or that runs in this host's network
   * namespace (loomd, etcd), and all their descendants.
   */
  private leftoverPids(): number[] {
    const marker = `${this.dir}/`;
    let ns: fs.Stats | undefined;
    try {
      ns = fs.statSync(`/run/netns/${this.netns}`);
    } catch {
      ns = undefined;
    }
    const children = new Map<number, number[]>();
    const roots: number[] = [];
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const pid = Number(e);
      if (pid === process.pid) continue;
      try {
        const ppid = Number(statFields(pid)?.[1]);
        children.set(ppid, [...(children.get(ppid) ?? []), pid]);
        const inNetns = ns !== undefined && ((st) => st.ino === ns.ino && st.dev === ns.dev)(fs.statSync(`/proc/${pid}/ns/net`));
        if (inNetns || fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.includes(marker))) roots.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    const out = new Set<number>();
    const visit = (pid: number): void => {
      if (out.has(pid)) return;
      out.add(pid);
      for (const c of children.get(pid) ?? []) visit(c);
    };
    roots.forEach(visit);
    return [...out].filter(pidAlive);
  }

  private async importBusybox(): Promise<void> {
    await this.cliOk(['import', '-c', 'CMD ["/bin/sh"]', await busyboxTar(), 'local/busybox']);
  }

  /**
   * `local/tools`: busybox plus iperf3 and socat (UDP servers, throughput) with the
   * libraries they link, copied from this machine. Built once per machine, imported on demand.
   */
  async importTools(): Promise<void> {
    const tar = path.join(ROOT, 'tools.tar');
    if (!fs.existsSync(tar)) {
      const rootfs = path.join(ROOT, `tools-rootfs-${process.pid}`);
      await runOk('mkdir', ['-p', path.join(rootfs, 'bin'), path.join(rootfs, 'usr/bin'), path.join(rootfs, 'tmp'), path.join(rootfs, 'etc')]);
      await runOk('tar', ['-C', rootfs, '-xf', path.join(ROOT, 'busybox.tar')]);
      const bins = ['/usr/bin/iperf3', '/usr/bin/socat'];
      const libs = new Set<string>();
      for (const b of bins) {
        for (const m of (await runOk('ldd', [b])).matchAll(/(\/[^\s]+\.so[^\s]*)/g)) libs.add(m[1] as string);
      }
      for (const f of [...bins, ...libs]) {
        fs.mkdirSync(path.join(rootfs, path.dirname(f)), { recursive: true });
        fs.copyFileSync(fs.realpathSync(f), path.join(rootfs, f));
        fs.chmodSync(path.join(rootfs, f), 0o755);
      }
      await runOk('tar', ['-C', rootfs, '-cf', `${tar}.tmp`, '.']);
      fs.renameSync(`${tar}.tmp`, tar);
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
    await this.cliOk(['import', '-c', 'CMD ["/bin/sh"]', tar, 'local/tools']);
  }

  async startLoomd(extraEnv: Record<string, string> = {}): Promise<void> {
    this.loomdPid = await this.spawnLoomd({ driver: this.driver, stateDir: this.stateDir, adminSocket: this.adminSocket, logFile: path.join(this.dir, 'loomd.log') }, { ...this.loomEnv, ...extraEnv });
  }

  /**
   * Starts a loomd in this host's namespaces (its own driver name, state directory, admin
   * socket and log) and waits until it answers; returns its PID.
   */
  private async spawnLoomd(where: { driver: string; stateDir: string; adminSocket: string; logFile: string }, extraEnv: Record<string, string>): Promise<number> {
    const socket = path.join(this.pluginDir, `${where.driver}.sock`);
    fs.rmSync(socket, { force: true });
    const env = {
      ...process.env,
      LOOM_SOCKET: `/run/docker/plugins/${where.driver}.sock`,
      LOOM_STATE_DIR: where.stateDir,
      LOOM_ADMIN_SOCKET: where.adminSocket,
      LOOM_LOG_LEVEL: 'debug',
      LOOM_DEFAULT_POOLS: '198.18.128.0/17:24,fd5c:10a::/48:64',
      DOCKER_HOST: `unix://${this.dockerSock}`,
      LOOM_RECONCILE_INTERVAL: '2',
      LOOM_RECONCILE_GRACE: '3',
      ...extraEnv,
    };
    const pid = this.spawnInHost([process.execPath, ...LOOMD_NODE_FLAGS, path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'main.js')], where.logFile, env);
    // waitFor retries through errors: an exited loomd ends the wait (true) and is reported after it.
    const exited = (): Error => new Error(`loomd exited; see ${where.logFile}`);
    await waitFor('loomd socket', async () => !pidAlive(pid) || fs.existsSync(socket), 20_000, 20);
    if (!pidAlive(pid)) throw exited();
    // The plugin socket appears first (the bootstrap answers Docker's handshake while the
    // rest loads); the admin socket answers only once loomd is fully started. A SIGKILLed
    // loomd leaves its admin socket file behind, so its existence proves nothing: ask it.
    await waitFor('loomd admin socket', async () => {
      if (!pidAlive(pid)) return true;
      try {
        return (await unixRequest(where.adminSocket, 'GET', '/v1/status', undefined, 2_000)).status === 200;
      } catch {
        return false;
      }
    }, 30_000, 50);
    if (!pidAlive(pid)) throw exited();
    return pid;
  }

  /**
   * A second loomd on this host, as when a legacy plugin runs beside a managed one: driver
   * (and socket) `driver`, its own state directory, admin socket and log under this host's
   * directory. destroy() stops it with everything else that runs in the host's namespace.
   */
  async startExtraLoomd(driver: string, extraEnv: Record<string, string> = {}): Promise<ExtraLoomd> {
    const dir = path.join(this.dir, `loomd-${driver}`);
    fs.mkdirSync(dir, { recursive: true });
    const where = { driver, stateDir: path.join(dir, 'state'), adminSocket: path.join(dir, 'admin.sock'), logFile: path.join(dir, 'loomd.log') };
    const extra: ExtraLoomd = {
      ...where,
      socket: path.join(this.pluginDir, `${driver}.sock`),
      pid: await this.spawnLoomd(where, extraEnv),
      start: async () => {
        extra.pid = await this.spawnLoomd(where, extraEnv);
      },
      stop: (signal: NodeJS.Signals = 'SIGTERM') => killAndWait(extra.pid, signal, 20_000),
      log: () => (fs.existsSync(where.logFile) ? fs.readFileSync(where.logFile, 'utf8') : ''),
    };
    return extra;
  }

  async stopLoomd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.loomdPid !== undefined) await killAndWait(this.loomdPid, signal, 20_000);
    this.loomdPid = undefined;
  }

  loomdLog(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'loomd.log'), 'utf8');
    } catch {
      return '';
    }
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

  /** Container interface facts inside the host namespace (links, addresses) as `ip -j` JSON. */
  async ipJson<T = unknown>(args: string[]): Promise<T> {
    return JSON.parse(await runOk('ip', ['-n', this.netns, '-j', ...args])) as T;
  }

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
    await attempt('stop leftover engine processes', async () => {
      const left = this.leftoverPids();
      if (!left.length) return;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const gone = await this.waitGone(left, 10_000);
      throw new Error(`killed ${left.length} leftover process(es) of this host${gone ? '' : ' (some still alive)'}: ${left.join(' ')}`);
    });
    await attempt('unmount namespace', () => run('umount', ['-l', this.mntFile]));
    await attempt('remove namespace file', async () => fs.rmSync(this.mntFile, { force: true }));
    await attempt('release namespace directory', async () => {
      if (fs.readdirSync(MNT_DIR).length === 0) await run('umount', [MNT_DIR]);
    });
    await attempt('delete netns', () => run('ip', ['netns', 'del', this.netns]));
    await attempt('delete outside netns', () => run('ip', ['netns', 'del', this.outNetns]));
    await attempt('remove files', async () => {
      fs.rmSync(this.ownerFile, { force: true }); // kept logs are not a host to sweep
      if (process.env.LOOM_KEEP_TEST_LOGS) return;
      await run('umount', ['-R', '-l', path.join(this.dir, 'data')]);
      fs.rmSync(this.dir, { recursive: true, force: true });
    });
    if (errors.length) console.warn(`test host ${this.name} cleanup: ${errors.join('; ')}`);
  }
}

/** A root filesystem tarball of the machine's static busybox and its applets (built once, cached under ROOT). */
export async function busyboxTar(): Promise<string> {
  const tar = path.join(ROOT, 'busybox.tar');
  if (!fs.existsSync(tar)) {
    const rootfs = path.join(ROOT, `busybox-rootfs-${process.pid}`);
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
    const applets = (await runOk('/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await runOk('tar', ['-C', rootfs, '-cf', `${tar}.tmp`, '.']);
    fs.renameSync(`${tar}.tmp`, tar);
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  return tar;
}
