/**
 * loom as a managed (v2) plugin on test hosts: the plugin directory built offline by
 * `npm run plugin:build` (plugin-config/build.sh; the base image's tarball is cached in ROOT),
 * created on a host's engine, set up with its state mount in the host's directory and the
 * host's Docker API socket. A host that runs the plugin is made with MANAGED_PLUGIN_HOST, so
 * that loomState() and loomOwner() ask the plugin's admin socket in that state mount.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { run, runOk } from './run';
import { REPO, ROOT, TestHost, TestHostOptions } from './test-host';

/** The plugin's name, as `npm run plugin:build` creates it. */
export const PLUGIN_NAME = 'loom:latest';
/** The plugin's state mount (its /var/lib/loom), relative to a host's directory. */
const STATE = 'plugin-state';

/** TestHost options of a host whose loom is the managed plugin. */
export const MANAGED_PLUGIN_HOST: Pick<TestHostOptions, 'driverName' | 'adminSocket'> = { driverName: PLUGIN_NAME, adminSocket: `${STATE}/admin.sock` };

/** The plugin's state directory on `host` (made if missing): `state.source` of the plugin. */
export function pluginStateDir(host: TestHost): string {
  const dir = path.join(host.dir, STATE);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface PluginBuild {
  /** The plugin directory (config.json, rootfs/), for `docker plugin create`. */
  dir: string;
  /** The build's output. */
  log: string;
}

/** What makes the plugin directory: build.sh's inputs (node_modules follows package-lock.json). */
const PLUGIN_INPUTS = ['driver', 'ipam-driver', 'lib', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json',
  'Dockerfile', '.dockerignore', 'plugin-config/build.sh', 'plugin-config/config.json'];
/** Cached plugin directories older than this are removed (other checkouts' builds are younger). */
const CACHE_MAX_AGE_MS = 12 * 3600_000;

/** A hash of the plugin's inputs in this checkout (committed or not) and node's version; undefined without git. */
async function pluginInputsKey(): Promise<string | undefined> {
  let listing: string;
  try {
    listing = await runOk('git', ['-C', REPO, 'ls-files', '-co', '--exclude-standard', '-z', '--', ...PLUGIN_INPUTS]);
  } catch {
    return undefined;
  }
  const h = createHash('sha256').update(process.version);
  for (const f of listing.split('\0').filter(Boolean).sort()) {
    const file = path.join(REPO, f);
    if (fs.existsSync(file)) h.update(`${f}\0`).update(fs.readFileSync(file));
  }
  return h.digest('hex').slice(0, 16);
}

const cachedDir = (key: string): string => path.join(ROOT, `plugin-dir-${key}`);

/** Keeps a built plugin directory under ROOT for cachedPluginBuild (same inputs, same directory). */
async function saveBuild(dir: string, key: string | undefined): Promise<void> {
  if (key === undefined || fs.existsSync(cachedDir(key))) return;
  const tmp = `${cachedDir(key)}.tmp-${process.pid}`;
  await runOk('cp', ['-a', dir, tmp], { timeoutMs: 120_000 });
  try {
    fs.renameSync(tmp, cachedDir(key));
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another test process saved it first
  }
  for (const e of fs.readdirSync(ROOT)) {
    const p = path.join(ROOT, e);
    if (e.startsWith('plugin-dir-') && Date.now() - fs.statSync(p).mtimeMs > CACHE_MAX_AGE_MS) fs.rmSync(p, { recursive: true, force: true });
  }
}

/**
 * The plugin directory for the checkout as it is: the one an earlier build of the same inputs
 * left under ROOT (e2e 08 builds it in every engine pass), or a new build (create: false).
 */
export async function cachedPluginBuild(host: TestHost): Promise<PluginBuild> {
  const key = await pluginInputsKey();
  if (key !== undefined && fs.existsSync(path.join(cachedDir(key), 'config.json'))) {
    return { dir: cachedDir(key), log: `reused ${cachedDir(key)}` };
  }
  return buildPlugin(host, { create: false });
}

/**
 * Builds the plugin directory with `host`'s engine into the host's directory (about 40 s) and,
 * with `create`, creates the plugin there (disabled). Throws with the build's output on failure.
 * The directory is also kept under ROOT for cachedPluginBuild.
 */
export async function buildPlugin(host: TestHost, opts: { create: boolean }): Promise<PluginBuild> {
  const key = await pluginInputsKey();
  const dir = path.join(host.dir, 'plugin-build');
  const r = await run('npm', ['--prefix', REPO, 'run', 'plugin:build'], {
    timeoutMs: 540_000,
    env: {
      ...host.engine.env,
      DOCKER_HOST: `unix://${host.dockerSock}`,
      DOCKER: host.engine.client,
      LOOM_BASE_CACHE: ROOT,
      LOOM_PLUGIN_DIR: dir,
      ...(opts.create ? {} : { LOOM_PLUGIN_CREATE: '0' }),
    },
  });
  const log = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`npm run plugin:build exited ${r.code}:\n${log}`);
  await saveBuild(dir, key);
  return { dir, log };
}

/**
 * `docker plugin set`: the plugin's state on the host, the host's Docker API and exec root
 * (its netns/ holds the containers' namespaces), debug logs and 2 s reconcile passes, then
 * `settings` (LOOM_* variables: pools, scope, etcd...).
 */
export async function configurePlugin(host: TestHost, settings: string[]): Promise<void> {
  await host.cliOk([
    'plugin', 'set', PLUGIN_NAME,
    `state.source=${pluginStateDir(host)}`,
    `docker.source=${host.dockerSock}`,
    `docker-exec.source=${path.join(host.dir, 'exec')}`,
    'LOOM_LOG_LEVEL=debug',
    'LOOM_RECONCILE_INTERVAL=2',
    ...settings,
  ]);
}

/** Disables (forced) and removes the plugin; errors are ignored (clean-up). */
export async function removePlugin(host: TestHost): Promise<void> {
  await host.cli(['plugin', 'disable', '-f', PLUGIN_NAME], { timeoutMs: 60_000 });
  await host.cli(['plugin', 'rm', '-f', PLUGIN_NAME], { timeoutMs: 60_000 });
}
