/**
 * loomd as a legacy plugin of a test host: the built daemon (dist/, or LOOM_DIST) started in the
 * host's namespaces with its socket in the host's plugin directory, waited for until its admin
 * socket answers. A host may run further loomd instances beside the first (ExtraLoomd).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOOMD_NODE_FLAGS } from '../../../driver/node-flags';
import { killAndWait, pidAlive, waitFor } from '../run';
import { unixRequest } from '../unix-http';
import { HostLayout, REPO } from './layout';
import { spawnInHost } from './namespaces';

/** Where one loomd of a host keeps its things. */
export interface LoomdPlace {
  /** Driver name: the socket file name in the plugin directory. */
  driver: string;
  stateDir: string;
  adminSocket: string;
  logFile: string;
}

/** A further loomd on a test host (TestHost.startExtraLoomd). */
export interface ExtraLoomd extends LoomdPlace {
  socket: string;
  pid: number;
  /** Starts it again (same state, same names) after stop(). */
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  log(): string;
}

/** Starts a loomd in the host's namespaces at `place` and waits until it answers; returns its PID. */
export async function spawnLoomd(l: HostLayout, place: LoomdPlace, extraEnv: Record<string, string>): Promise<number> {
  const socket = path.join(l.pluginDir, `${place.driver}.sock`);
  fs.rmSync(socket, { force: true });
  const env = {
    ...process.env,
    LOOM_SOCKET: `/run/docker/plugins/${place.driver}.sock`,
    LOOM_STATE_DIR: place.stateDir,
    LOOM_ADMIN_SOCKET: place.adminSocket,
    LOOM_LOG_LEVEL: 'debug',
    LOOM_DEFAULT_POOLS: '198.18.128.0/17:24,fd5c:10a::/48:64',
    DOCKER_HOST: `unix://${l.dockerSock}`,
    LOOM_RECONCILE_INTERVAL: '2',
    LOOM_RECONCILE_GRACE: '3',
    ...extraEnv,
  };
  const pid = spawnInHost(l, [process.execPath, ...LOOMD_NODE_FLAGS, path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'main.js')], place.logFile, env);
  // waitFor retries through errors: an exited loomd ends the wait (true) and is reported after it.
  const exited = (): Error => new Error(`loomd exited; see ${place.logFile}`);
  await waitFor('loomd socket', async () => !pidAlive(pid) || fs.existsSync(socket), 20_000, 20);
  if (!pidAlive(pid)) throw exited();
  // The plugin socket appears first (the bootstrap answers Docker's handshake while the
  // rest loads); the admin socket answers only once loomd is fully started. A SIGKILLed
  // loomd leaves its admin socket file behind, so its existence proves nothing: ask it.
  await waitFor('loomd admin socket', async () => {
    if (!pidAlive(pid)) return true;
    try {
      return (await unixRequest(place.adminSocket, 'GET', '/v1/status', undefined, 2_000)).status === 200;
    } catch {
      return false;
    }
  }, 30_000, 50);
  if (!pidAlive(pid)) throw exited();
  return pid;
}

/**
 * A second loomd on the host, as when a legacy plugin runs beside a managed one: driver (and
 * socket) `driver`, its own state directory, admin socket and log under the host's directory.
 * The host's destroy() stops it with everything else that runs in the host's namespace.
 */
export async function startExtraLoomd(l: HostLayout, driver: string, extraEnv: Record<string, string>): Promise<ExtraLoomd> {
  const dir = path.join(l.dir, `loomd-${driver}`);
  fs.mkdirSync(dir, { recursive: true });
  const place = { driver, stateDir: path.join(dir, 'state'), adminSocket: path.join(dir, 'admin.sock'), logFile: path.join(dir, 'loomd.log') };
  const extra: ExtraLoomd = {
    ...place,
    socket: path.join(l.pluginDir, `${driver}.sock`),
    pid: await spawnLoomd(l, place, extraEnv),
    start: async () => {
      extra.pid = await spawnLoomd(l, place, extraEnv);
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => killAndWait(extra.pid, signal, 20_000),
    log: () => readLog(place.logFile),
  };
  return extra;
}

/** A log file's text ('' while it does not exist). */
export function readLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
