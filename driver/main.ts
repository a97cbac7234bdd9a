#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * loomd's entry point, kept small on purpose: parse the configuration, open the plugin
 * socket (Docker's handshake calls are answered from then on), start opening the store
 * (LevelDB works in its own threads), and load the rest of loomd (zod, netlink, the daemon...)
 * while it does; then start it. Docker never waits for module loading or for the state to
 * be read, and the first real call waits for module loading and the store side by side,
 * not one after the other. Real calls are still only answered once the state is loaded.
 * `npm run build` bundles this file and what it imports into one (package.json's "bundle"):
 * each module's code still runs only when first required.
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
  const { VERSION } = BEFORE_PRELOADS.version();
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
  // socket answer Docker's handshake between them (setImmediate: after pending I/O), and the
  // store open and read in LevelDB's threads meanwhile.
  const { createLogger } = BEFORE_PRELOADS.logger();
  const log = createLogger(config.logLevel);
  for (const w of config.warnings) log.warn(w);
  const { openState } = BEFORE_PRELOADS.state();
  const since = Date.now();
  const opening = { state: openState(config.stateDir, log), since };
  // Awaited, and its failure reported, by startDaemon; this only keeps it from counting as unhandled meanwhile.
  opening.state.catch(() => undefined);
  // (express is not among them: it answers only unusual requests and loads on the first one.)
  for (const load of PRELOADS) {
    await new Promise((r) => setImmediate(r));
    load();
  }
  const { startDaemon } = await import('./daemon');
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, log, early, opening);
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

/**
 * What main() loads before the preloads, in its order; main() takes them from here, so that
 * loadModules() cannot miss one of them (each a literal require: a bundler follows it). The
 * daemon main() then imports is the last of the preloads.
 */
const BEFORE_PRELOADS = {
  version: (): typeof import('./version') => require('./version'),
  logger: (): typeof import('../lib/logger') => require('../lib/logger'),
  state: (): typeof import('./startup/state') => require('./startup/state'),
};

/** The heavy modules loomd loads before its first real call, in the order main() loads them (each a literal require: a bundler follows it). */
export const PRELOADS: ReadonlyArray<() => unknown> = [
  () => require('zod/v3'),
  () => require('./kernel/netlink-lib'),
  () => require('async-mutex'),
  () => require('./daemon'),
];

/** Loads every module main() loads before the first real call, without starting loomd (the benchmark's floor of loomd's start-up). */
export function loadModules(): void {
  for (const load of [...Object.values(BEFORE_PRELOADS), ...PRELOADS]) load();
}

if (require.main === module) void main();
