/**
 * loomd's listeners besides the plugin socket (the metrics endpoint), their orderly close,
 * the lazily created Docker client, and the data plane's restore after a start.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import Module from 'node:module';
import * as path from 'node:path';
import type Dockerode from 'dockerode';
import { asLoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { listenUnix } from '../http/server';
import type { NetworkRepairs } from '../network/repairs';
import type { NetworkTable } from '../network/network-table';
import type { Metrics } from '../ops/metrics';
import type { PortPublisher } from '../ports/port-publisher';
import { StepRunner } from '../dataplane/steps';

/** A Docker API client created (and dockerode loaded) on first use. */
export function lazyDocker(socketPath: string): () => Promise<Dockerode> {
  let client: Promise<Dockerode> | undefined;
  return () =>
    (client ??= Promise.resolve().then(() => {
      withoutUnusedTransports();
      const D = require('dockerode') as typeof Dockerode;
      return new D({ socketPath, timeout: 30_000 });
    }));
}

/**
 * dockerode loads, whatever the Docker host is, ssh2 (for ssh:// hosts; it instantiates its
 * WebAssembly crypto at load: about 14 MiB of RSS, 17 MiB of external memory) and gRPC with
 * protobufjs (about 100 modules, for BuildKit sessions of image builds). loomd only reads and
 * writes networks and reads containers over a Unix socket (--docker-host is unix:// only), so
 * dockerode gets stand-ins for both that refuse to be used. Never replaces a module that was
 * loaded already (loomctl, tests).
 */
export function withoutUnusedTransports(): void {
  const dockerode = require.resolve('dockerode');
  const modem = require.resolve('docker-modem', { paths: [path.dirname(dockerode)] });
  const refuse = (what: string) =>
    function unsupported(): never {
      throw new Error(`loomd's Docker client talks to a Unix socket only: ${what} is not available`);
    };
  stub(require.resolve('ssh2', { paths: [path.dirname(modem)] }), { Client: refuse('ssh://') });
  stub(path.join(path.dirname(dockerode), 'session.js'), refuse('a BuildKit session'));
}

function stub(file: string, exports: unknown): void {
  if (require.cache[file] || !fs.existsSync(file)) return;
  const m = new Module(file);
  m.filename = file;
  m.loaded = true;
  m.exports = exports;
  require.cache[file] = m;
}

/** The metrics listener: a Unix socket (root only) or HOST:PORT; never the plugin socket. */
export async function listenMetrics(metrics: Metrics, where: string): Promise<http.Server> {
  if (where.startsWith('/')) return listenUnix(metrics.app(), where, 0o600);
  const colon = where.lastIndexOf(':');
  const host = where.slice(0, colon).replace(/^\[|\]$/g, '');
  const server = http.createServer(metrics.app());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(where.slice(colon + 1)), host, () => resolve());
  });
  return server;
}

/** Finishes the calls in flight (at most 10 s), refuses new ones, removes the socket files. */
export async function closeServers(servers: Array<http.Server | undefined>): Promise<void> {
  for (const srv of servers) {
    if (!srv) continue;
    const where = srv.address();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => srv.closeAllConnections(), 10_000);
      force.unref();
      srv.close(() => {
        clearTimeout(force);
        // A Unix socket's file outlives the listener: remove it so nothing dials a dead socket.
        if (typeof where === 'string') fs.rmSync(where, { force: true });
        resolve();
      });
      srv.closeIdleConnections();
    });
  }
}

/** Re-creates bridges, gateway addresses, held ports and firewall rules of every stored network. */
export async function restoreDataPlane(table: NetworkTable, repairs: NetworkRepairs, ports: PortPublisher, log: Logger): Promise<void> {
  await ports.restore();
  for (const { record } of table.list()) {
    await table.withNetworkLock(record.id, async () => {
      try {
        await repairs.restoreNetworkLocked(record, new StepRunner(`restore network ${record.id.slice(0, 12)}`, log));
      } catch (err) {
        log.error({ networkId: record.id, err: asLoomError(err).message }, 'could not restore network');
      }
    });
  }
  await repairs.syncFirewall();
  log.info({ networks: table.list().length }, 'data plane restored');
}
