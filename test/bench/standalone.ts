/**
 * A real loomd process (the built dist/driver/main.js) in a network namespace the benchmark
 * creates, on temporary sockets and a temporary state directory, without Docker
 * (--docker-host off). The benchmark talks to it through pluginCall, like dockerd does.
 * destroy() kills it (by its PID) and removes the namespace (with every bridge, veth and
 * nftables rule it made there) and the directory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../helpers/test-host';
import { killAndWait, pidAlive, run, runOk, sleep } from '../helpers/run';
import { pluginCall, unixRequest } from '../helpers/unix-http';
import { LOOMD_DEFAULTS, msSince, rssMiB } from './context';
import { LOOMD_NODE_FLAGS } from '../../driver/node-flags';

const BENCH_ROOT = '/tmp/loom-bench';

export class StandaloneLoomd {
  readonly netns: string;
  readonly dir: string;
  readonly socket: string;
  readonly adminSocket: string;
  readonly logFile: string;
  pid: number | undefined;

  constructor(readonly name: string) {
    const id = randomBytes(3).toString('hex');
    this.netns = `loomb-${id}-${name}`;
    this.dir = path.join(BENCH_ROOT, `${name}-${id}`);
    this.socket = path.join(this.dir, 'plugins', 'loombench.sock');
    this.adminSocket = path.join(this.dir, 'admin.sock');
    this.logFile = path.join(this.dir, 'loomd.log');
  }

  async create(): Promise<void> {
    fs.mkdirSync(path.join(this.dir, 'plugins'), { recursive: true, mode: 0o700 });
    await runOk('ip', ['netns', 'add', this.netns]);
    await runOk('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);
  }

  /** Spawns loomd (of the build in `dist`, LOOM_DIST's by default); returns at once (the caller measures how long the socket takes). */
  spawn(extraEnv: Record<string, string> = {}, dist?: string): number {
    const out = fs.openSync(this.logFile, 'a');
    const env = {
      ...process.env,
      LOOM_SOCKET: this.socket,
      LOOM_STATE_DIR: path.join(this.dir, 'state'),
      LOOM_ADMIN_SOCKET: this.adminSocket,
      ...LOOMD_DEFAULTS,
      LOOM_DEFAULT_POOLS: '198.18.128.0/17:24',
      DOCKER_HOST: 'off',
      LOOM_BENCH_MEM_FILE: path.join(this.dir, 'mem.json'),
      ...extraEnv,
    };
    const main = path.join(dist ?? process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'main.js');
    // nsenter without --fork execs node: the PID we get is loomd's.
    // --expose-gc and the preload only let the benchmark ask for a full GC (SIGUSR2) before reading RSS.
    const child = spawn('nsenter', [`--net=/run/netns/${this.netns}`, process.execPath, ...LOOMD_NODE_FLAGS, ...extraNodeArgs(), '--expose-gc', '-r', path.join(__dirname, 'gc-preload.js'), main], {
      detached: true,
      stdio: ['ignore', out, out],
      env,
    });
    fs.closeSync(out);
    child.unref();
    if (!child.pid) throw new Error('could not start loomd');
    this.pid = child.pid;
    return child.pid;
  }

  /** Polls GetCapabilities until it answers 200 (bounded); returns ms since `t0`. */
  async waitAnswering(t0: bigint, timeoutMs = 20_000, everyMs = 2): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.pid !== undefined && !pidAlive(this.pid)) throw new Error(`loomd exited; see ${this.logFile}`);
      try {
        const r = await pluginCall(this.socket, 'NetworkDriver.GetCapabilities', undefined);
        if (r.status === 200) return msSince(t0);
      } catch {
        // not listening yet
      }
      await sleep(everyMs);
    }
    throw new Error(`loomd did not answer within ${timeoutMs} ms; see ${this.logFile}`);
  }

  /** Polls the admin API until the reconciler finished `passes` passes (bounded); returns ms since `t0`. */
  async waitReconciled(t0: bigint, passes = 1, timeoutMs = 60_000, everyMs = 10): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const r = await unixRequest(this.adminSocket, 'GET', '/v1/reconcile', undefined, 5_000);
        if (r.status === 200 && (r.json?.passes ?? 0) >= passes) return msSince(t0);
      } catch {
        // not listening yet
      }
      await sleep(everyMs);
    }
    throw new Error(`no reconcile pass within ${timeoutMs} ms; see ${this.logFile}`);
  }

  rss(): number | undefined {
    return this.pid === undefined ? undefined : rssMiB(this.pid);
  }

  /** Memory after a forced full garbage collection (see gc-preload.ts), MiB. */
  async memAfterGc(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number } | undefined> {
    if (this.pid === undefined) return undefined;
    const file = path.join(this.dir, 'mem.json');
    fs.rmSync(file, { force: true });
    process.kill(this.pid, 'SIGUSR2');
    for (let i = 0; i < 100 && !fs.existsSync(file); i++) await sleep(20);
    await sleep(200);
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { heapUsed: number; heapTotal: number; external: number };
    return { rss: this.rss() ?? NaN, heapUsed: m.heapUsed / 2 ** 20, heapTotal: m.heapTotal / 2 ** 20, external: m.external / 2 ** 20 };
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.pid !== undefined) await killAndWait(this.pid, signal, 20_000);
    this.pid = undefined;
  }

  async destroy(): Promise<void> {
    await this.kill('SIGTERM');
    await run('ip', ['netns', 'del', this.netns]);
    if (!process.env.LOOM_KEEP_TEST_LOGS) fs.rmSync(this.dir, { recursive: true, force: true });
    try {
      fs.rmdirSync(BENCH_ROOT); // only when empty (another run may be using it)
    } catch {
      // not empty or already gone
    }
  }
}

/** A plugin call that must succeed; returns the reply and the client-side round trip in ms. */
export async function call(socket: string, method: string, body?: unknown): Promise<{ json: any; ms: number }> {
  const t0 = process.hrtime.bigint();
  const r = await pluginCall(socket, method, body);
  const ms = msSince(t0);
  if (r.status !== 200) throw new Error(`${method} -> ${r.status}: ${r.body.slice(0, 300)}`);
  return { json: r.json, ms };
}

export const randomId = (): string => randomBytes(32).toString('hex');

/** Extra node arguments for loomd, only to profile it inside a benchmark (e.g. BENCH_LOOMD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"); none normally. */
function extraNodeArgs(): string[] {
  return (process.env.BENCH_LOOMD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}
