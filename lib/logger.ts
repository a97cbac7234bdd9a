/**
 * Structured JSON logs (pino), one line per event. Every plugin call is logged
 * once by the HTTP envelope with a request id, method, ids, duration and outcome.
 */
import pino from 'pino';

export type Logger = pino.Logger;

import type { LogLevel } from './levels';


export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  // The daemon's name is `name`; `svc` is left to the child loggers (ipam, reconcile...), so that no
  // line carries a key twice (strict JSON pipelines reject duplicate keys).
  return pino({ level, name: 'loomd', base: {}, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
