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
 * later lines are dropped), and a failing write (a full disk under a redirected stdout) is
 * tried again every second and costs log lines, not the daemon; both are counted
 * (logLosses). A synchronous writer was measured faster on the /16 fill (0.89x wall) but
 * would freeze every call, lease keep-alive and repair behind a full pipe; used only for a
 * regular file it made the /17 fill's loomd CPU per address about 0.85x, yet the admin API's
 * apply of a policy (1,000 endpoints) about 50 ms slower, for a reason not found (2026-12-08).
 */
export const LOG_BACKLOG_BYTES = 8 * 1024 * 1024;

/** Log lines standard output lost since loomd started (metrics and `loomctl status` report them). */
export interface LogLosses {
  /** Lines dropped because LOG_BACKLOG_BYTES were already waiting. */
  droppedLines: number;
  droppedBytes: number;
  /** Writes that failed (what waits is tried again: boundedDestination). */
  writeErrors: number;
  lastWriteError?: string;
}

const losses: LogLosses = { droppedLines: 0, droppedBytes: 0, writeErrors: 0 };

/** What loomd's log writer lost so far (a copy). */
export function logLosses(): LogLosses {
  return { ...losses };
}

/**
 * An asynchronous writer to `fd` holding at most `maxLength` bytes back; what it loses is
 * counted in logLosses(). After a failed write it tries again every `retryMs` (pino's writer
 * tries again only with the next line, and no longer once the backlog is full: logging would
 * then stay stopped after the disk has room again).
 */
export function boundedDestination(fd: number, maxLength = LOG_BACKLOG_BYTES, retryMs = 1_000): pino.DestinationStream {
  const dest = pino.destination({ dest: fd, sync: false, maxLength });
  let retry: NodeJS.Timeout | undefined;
  const again = (): void => {
    retry = undefined;
    try {
      dest.write(''); // writes what waits
    } catch {
      // closed meanwhile
    }
  };
  dest.on('drop', (data: string | Buffer) => {
    const text = String(data);
    losses.droppedLines += text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    losses.droppedBytes += Buffer.byteLength(text);
  });
  let last: unknown;
  dest.on('error', (err: NodeJS.ErrnoException) => {
    // pino's own listener (attached first) hands the first error on again: count it once.
    if (err === last) return;
    last = err;
    losses.writeErrors++;
    losses.lastWriteError = err.code ?? err.message;
    retry ??= setTimeout(again, retryMs).unref();
  });
  return dest;
}

export function createLogger(level: LogLevel, destination: pino.DestinationStream = boundedDestination(1)): Logger {
  // The daemon's name is `name`; `svc` is left to the child loggers (ipam, reconcile...), so that no
  // line carries a key twice (strict JSON pipelines reject duplicate keys).
  return pino({ level, name: 'loomd', base: {}, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
