/**
 * Docker-in-Docker on a test host: loom's DinD image (plugin-config/dind/build.sh, imported into
 * the host's engine) run as a privileged container of that engine, whose inner dockerd also
 * listens on a socket in a directory bind-mounted from the host's directory, so the test talks to
 * the inner engine's API directly. Everything of a DinD container (its inner engine, containers,
 * plugins, mounts, namespaces) lives inside it and goes with `docker rm -f -v`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, RunResult, waitFor } from './run';
import { REPO, TestHost } from './test-host';
import { busyboxTar } from './host/images';

/** The image's tag in a test host's engine. */
export const DIND_IMAGE = 'loom/dind:test';

/**
 * What this checkout is, for the DinD image's label org.loom.source and dind:build's cache of the
 * image tarball (LOOM_DIND_SOURCE): the commit and a hash of the uncommitted changes and untracked
 * files outside docs/; undefined outside git.
 */
export async function dindSourceKey(): Promise<string | undefined> {
  const head = await run('git', ['-C', REPO, 'rev-parse', 'HEAD'], { timeoutMs: 30_000 });
  const diff = await run('git', ['-C', REPO, 'diff', 'HEAD', '--', '.', ':!docs', ':!*.md'], { timeoutMs: 60_000 });
  const untracked = await run('git', ['-C', REPO, 'ls-files', '--others', '--exclude-standard', '--', '.', ':!docs', ':!*.md'], { timeoutMs: 60_000 });
  if (head.code !== 0 || diff.code !== 0 || untracked.code !== 0) return undefined;
  const hash = createHash('sha256').update(diff.stdout).update('\0').update(untracked.stdout).digest('hex');
  return `${head.stdout.trim().slice(0, 12)}-${hash.slice(0, 12)}`;
}

/**
 * `npm run dind:build` against `host`'s engine: the Debian rootfs is cached under
 * /var/cache/loom-dind (LOOM_DIND_CACHE), the rest is built every time. Returns the build's output.
 */
export async function buildDindImage(host: TestHost): Promise<string> {
  const r = await run('npm', ['--prefix', REPO, 'run', 'dind:build'], {
    timeoutMs: 900_000,
    env: { ...host.engine.env, DOCKER_HOST: `unix://${host.dockerSock}`, DOCKER: host.engine.client, LOOM_DIND_IMAGE: DIND_IMAGE, LOOM_DIND_SOURCE: (await dindSourceKey()) ?? '' },
  });
  const log = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`npm run dind:build exited ${r.code}:\n${log}`);
  return log;
}

/** A running DinD container of a test host and its inner engine's API. */
export class Dind {
  /** The inner dockerd's API socket, as this process sees it. */
  readonly sock: string;

  private constructor(readonly host: TestHost, readonly name: string, private readonly outDir: string) {
    this.sock = path.join(outDir, 'docker.sock');
  }

  /**
   * `docker run -d --privileged` of the DinD image on `host` (env: e.g. LOOM_DIND=off for a plain
   * inner engine), waits (bounded) until the inner engine answers and imports local/busybox into it.
   */
  static async start(host: TestHost, name: string, env: Record<string, string> = {}): Promise<Dind> {
    const outDir = path.join(host.dir, `dind-${name}`);
    fs.mkdirSync(outDir, { recursive: true });
    const d = new Dind(host, name, outDir);
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await host.cliOk(['run', '-d', '--privileged', '--name', name, '--hostname', name, ...envArgs, '-v', `${outDir}:/run/outer`,
      DIND_IMAGE, '-H', 'unix:///var/run/docker.sock', '-H', 'unix:///run/outer/docker.sock'], { timeoutMs: 60_000 });
    try {
      await d.waitReady();
      await d.cliOk(['import', '-c', 'CMD ["/bin/sh"]', await busyboxTar(), 'local/busybox'], { timeoutMs: 60_000 });
    } catch (err) {
      await d.remove();
      throw err;
    }
    return d;
  }

  /** Waits (bounded) until the inner engine answers; fails early with the container's log if it stopped. */
  async waitReady(timeoutMs = 90_000): Promise<void> {
    let stopped = '';
    await waitFor(`inner dockerd of ${this.name}`, async () => {
      const state = await this.host.cli(['inspect', '-f', '{{.State.Running}}', this.name]);
      if (state.stdout.trim() !== 'true') {
        stopped = await this.logs();
        return true; // no use waiting (waitFor would retry a throw)
      }
      return fs.existsSync(this.sock) && (await this.cli(['version'], { timeoutMs: 10_000 })).code === 0;
    }, timeoutMs, 250);
    if (stopped) throw new Error(`DinD container ${this.name} is not running:\n${stopped}`);
  }

  /** The container's output (the entrypoint's, loomd's and the inner dockerd's). */
  async logs(): Promise<string> {
    const r = await this.host.cli(['logs', '--tail', '80', this.name]);
    return r.stdout + r.stderr;
  }

  /** The docker CLI against the inner engine. */
  cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run(this.host.engine.client, ['-H', `unix://${this.sock}`, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, env: this.host.engine.env });
  }

  async cliOk(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`inner docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout.trim();
  }

  /** A command in the DinD container itself (its namespaces: the inner engine's "host"). */
  exec(cmd: string[], timeoutMs = 30_000): Promise<RunResult> {
    return this.host.cli(['exec', this.name, ...cmd], { timeoutMs });
  }

  /** The DinD container's address on the outer engine's default bridge. */
  ip(): Promise<string> {
    return this.host.cliOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', this.name]);
  }

  /** `ping -c1 -W1` from an inner container, true on a reply (a few tries). */
  async ping(container: string, target: string, tries = 3): Promise<boolean> {
    for (let i = 0; i < tries; i++) {
      if ((await this.cli(['exec', container, 'ping', '-c', '1', '-W', '1', target], { timeoutMs: 10_000 })).code === 0) return true;
    }
    return false;
  }

  /** Removes the container with its volumes (its inner engine and everything in it go along); errors are ignored. */
  async remove(): Promise<void> {
    await this.host.cli(['rm', '-f', '-v', this.name], { timeoutMs: 120_000 });
    fs.rmSync(this.outDir, { recursive: true, force: true });
  }
}


