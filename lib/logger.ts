/**
 * Structured JSON logs (pino), one line per event. Every plugin call is logged
 * once by the HTTP envelope with a request id, method, ids, duration and outcome.
 */
import pino from 'pino';

export type Logger = pino.Logger;

import type { LogLevel } from './levels';

/**
 * Lines go to standard output, each written before the call that logs it returns (a
 * synchronous destination): a loomd killed (SIGKILL, OOM) or exiting loses no line it
 * logged, and under load it costs less than pino's default asynchronous writer (profiled
 * on the /16 fill: the asynchronous writer's string writes took 11 % of loomd's time,
 * these 2.5 %). The price: a reader that stops reading a pipe (journald, containerd's
 * log copier) stalls loomd, as it would stall dockerd's own logging.
 */
export function createLogger(level: LogLevel, destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  // The daemon's name is `name`; `svc` is left to the child loggers (ipam, reconcile...), so that no
  // line carries a key twice (strict JSON pipelines reject duplicate keys).
  return pino({ level, name: 'loomd', base: {}, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
