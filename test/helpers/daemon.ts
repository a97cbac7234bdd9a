/**
 * Starts the real loomd (startDaemon, the same code as the binary) in-process on
 * temporary sockets and a temporary state directory. Used by the contract and
 * kernel tiers, which run inside a throwaway network namespace (`unshare --net`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Daemon, startDaemon } from '../../driver/daemon';
import { silentLogger, createLogger } from '../../lib/logger';
import { parseDefaultPool } from '../../ipam-driver/core/pool-picker';
import { unixRequest } from './unix-http';

export interface TestDaemon {
  socket: string;
  adminSocket: string;
  stateDir: string;
  dir: string;
  stop(): Promise<void>;
  state(): Promise<{ networks: Array<Record<string, any>>; pools: Array<Record<string, any>> }>;
}

export async function startTestDaemon(opts: { dir?: string; defaultPools?: string[] } = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'loom-test-'));
  const socket = path.join(dir, 'loomtest.sock');
  const adminSocket = path.join(dir, 'admin.sock');
  const stateDir = path.join(dir, 'state');
  const log = process.env.LOOM_TEST_LOG ? createLogger('debug') : silentLogger();
  let daemon: Daemon | undefined = await startDaemon(
    {
      socket,
      socketMode: 0o600,
      adminSocket,
      stateDir,
      dockerSocket: undefined,
      etcd: { endpoints: [] },
      advertiseAddress: undefined,
      leaseTtlS: 10,
      peerGraceS: 900,
      driverName: 'loomtest',
      metrics: undefined,
      scope: 'local',
      procSys: '/proc/sys',
      netnsDir: undefined,
      reconcileIntervalS: 3600,
      reconcileGraceS: 10,
      logLevel: 'silent',
      defaultPools: (opts.defaultPools ?? ['198.19.200.0/21:24', 'fd5c:10b::/48:64']).map(parseDefaultPool),
      warnings: [],
    },
    log,
  );
  return {
    socket,
    adminSocket,
    stateDir,
    dir,
    async stop() {
      if (daemon) await daemon.stop();
      daemon = undefined;
    },
    async state() {
      const networks = await unixRequest(adminSocket, 'GET', '/v1/networks');
      const pools = await unixRequest(adminSocket, 'GET', '/v1/ipam');
      return { networks: networks.json, pools: pools.json };
    },
  };
}
