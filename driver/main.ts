#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * loomd's entry point, kept small on purpose: parse the configuration, open the plugin
 * socket (Docker's handshake calls are answered from then on), and only then load the
 * rest of loomd (express, zod, LevelDB, netlink...) and start it. Docker never waits
 * for module loading or for the state to be read.
 */
import { asLoomError } from '../lib/errors';
import { USAGE, parseConfig } from './config';
import { staticAnswers } from './api/static-answers';
import { openEarlySocket } from './http/early-socket';

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`loomd: ${asLoomError(err).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { VERSION } = await import('./version');
  if (parsed.kind === 'version') {
    process.stdout.write(`loomd ${VERSION}\n`);
    return;
  }
  const config = parsed.config;
  let early;
  try {
    early = await openEarlySocket(config.socket, config.socketMode, staticAnswers(config.scope));
  } catch (err) {
    process.stderr.write(`loomd: ${asLoomError(err).message}\n`);
    process.exit(1);
  }
  // Loading modules blocks the event loop: load the heavy ones one by one, letting the early
  // socket answer Docker's handshake between them.
  for (const m of ['pino', 'zod', 'express', 'level', 'netlink', 'async-mutex']) {
    require(m);
    await new Promise((r) => setImmediate(r));
  }
  const { createLogger } = await import('../lib/logger');
  const log = createLogger(config.logLevel);
  const { startDaemon } = await import('./daemon');
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, log, early);
  } catch (err) {
    log.fatal({ err: asLoomError(err).message }, 'loomd could not start');
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing calls in flight; the data plane stays up');
    daemon
      .stop()
      .then(() => process.exit(0))
      .catch((err) => {
        log.error({ err: String(err) }, 'unclean stop');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (require.main === module) void main();
