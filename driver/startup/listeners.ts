/**
 * loomd's listeners besides the plugin socket (the metrics endpoint), their orderly close,
 * the lazily created Docker client, and the data plane's restore after a start.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
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
  return () => (client ??= import('dockerode').then(({ default: D }) => new D({ socketPath, timeout: 30_000 })));
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
