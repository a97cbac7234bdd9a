/**
 * A test host's private dockerd (and the containerd it manages): started inside the host's
 * namespaces on its own data-root, exec-root and socket, stopped by its own PID only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { killAndWait, pidAlive, run, RunResult, waitFor, waitGone } from '../run';
import type { Engine } from '../engines';
import { HostLayout } from './layout';
import { spawnInHost } from './namespaces';

/** The docker CLI matching the engine, against the host's dockerd. */
export function dockerCli(l: HostLayout, engine: Engine, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(engine.client, ['-H', `unix://${l.dockerSock}`, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, env: engine.env });
}

export class Dockerd {
  pid: number | undefined;

  constructor(
    private readonly l: HostLayout,
    private readonly engine: Engine,
    /** Extra dockerd flags (e.g. --live-restore); start() may replace them. */
    private args: string[],
  ) {}

  /** Starts dockerd; `wait: false` returns at once (dockerd may wait on a plugin that starts later): see waitReady. */
  async start(extraArgs?: string[], opts: { wait?: boolean } = {}): Promise<void> {
    if (extraArgs) this.args = extraArgs;
    const pidfile = path.join(this.l.dir, 'docker.pid');
    // A SIGKILLed dockerd leaves its pidfile; the next start refuses while it exists.
    if (this.pid === undefined || !pidAlive(this.pid)) fs.rmSync(pidfile, { force: true });
    // Its managed containerd dies with a SIGKILLed dockerd (parent-death signal) but stays a zombie
    // until PID 1 reaps it (slowly here); a dockerd that finds its pidfile waits for the zombie's socket
    // (~10 s with containerd 2.1, a minute with 1.6). Forget a dead containerd; one still exiting
    // (stop() waits for that) is given a moment, a live one is adopted by the new dockerd.
    const ctrPid = this.containerdPid();
    if (ctrPid !== undefined) await waitGone([ctrPid], 5_000);
    if (ctrPid === undefined || !pidAlive(ctrPid)) fs.rmSync(this.containerdPidfile, { force: true });
    this.pid = spawnInHost(
      this.l,
      [
        this.engine.dockerd,
        '--data-root', path.join(this.l.dir, 'data'),
        '--exec-root', path.join(this.l.dir, 'exec'),
        '-H', `unix://${this.l.dockerSock}`,
        '--pidfile', pidfile,
        ...this.engine.dockerdArgs,
        ...this.args,
      ],
      path.join(this.l.dir, 'dockerd.log'),
      this.engine.env,
    );
    if (opts.wait !== false) await this.waitReady();
  }

  /** Waits (bounded) until dockerd answers its API. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor('dockerd to answer', async () => (await dockerCli(this.l, this.engine, ['version'], { timeoutMs: 5_000 })).code === 0, timeoutMs, 100);
  }

  /**
   * Stops dockerd and waits until its managed containerd has exited too: after SIGKILL, containerd
   * (2.x more slowly than 1.6) is still exiting when dockerd is gone, and a dockerd started in that
   * window takes it for a running containerd and waits ~10 s for it. With --live-restore the
   * container shims stay, as on a real host.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.pid === undefined) return;
    const ctrPid = this.containerdPid();
    await killAndWait(this.pid, signal, 60_000);
    if (ctrPid !== undefined) await waitGone([ctrPid], 10_000);
  }

  private get containerdPidfile(): string {
    return path.join(this.l.dir, 'exec', 'containerd', 'containerd.pid');
  }

  /** The PID in the managed containerd's pidfile, if there is one (that process may be gone, or a zombie). */
  private containerdPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.containerdPidfile, 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}
