/**
 * loom as a managed (v2) plugin on test hosts: the plugin directory built offline by
 * `npm run plugin:build` (plugin-config/build.sh; the base image's tarball is cached in ROOT),
 * created on a host's engine, set up with its state mount in the host's directory and the
 * host's Docker API socket. A host that runs the plugin is made with MANAGED_PLUGIN_HOST, so
 * that loomState() and loomOwner() ask the plugin's admin socket in that state mount.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './run';
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

/**
 * Builds the plugin directory with `host`'s engine into the host's directory (about 40 s) and,
 * with `create`, creates the plugin there (disabled). Throws with the build's output on failure.
 */
export async function buildPlugin(host: TestHost, opts: { create: boolean }): Promise<PluginBuild> {
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
