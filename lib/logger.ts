/**
 * Structured JSON logs (pino), one line per event. Every plugin call is logged
 * once by the HTTP envelope with a request id, method, ids, duration and outcome.
 */
import pino from 'pino';

export type Logger = pino.Logger;

import type { LogLevel } from './levels';

/**
 * Lines go to standard output through pino's asynchronous writer: a reader that stops
 * reading (dockerd stopped under --live-restore holds a managed plugin's stdout) blocks one
 * libuv thread, never loomd's event loop. What waits meanwhile is bounded (LOG_BACKLOG_BYTES;
 * later lines are dropped), and a failing write (a full disk under a redirected stdout) costs
 * log lines, not the daemon. A synchronous writer was measured faster on the /16 fill
 * (0.89x wall) but would freeze every call, lease keep-alive and repair behind a full pipe.
 */
export const LOG_BACKLOG_BYTES = 8 * 1024 * 1024;

function stdoutDestination(): pino.DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, maxLength: LOG_BACKLOG_BYTES });
  dest.on('error', () => undefined);
  return dest;
}

export function createLogger(level: LogLevel, destination: pino.DestinationStream = stdoutDestination()): Logger {
  // The daemon's name is `name`; `svc` is left to the child loggers (ipam, reconcile...), so that no
  // line carries a key twice (strict JSON pipelines reject duplicate keys).
  return pino({ level, name: 'loomd', base: {}, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
