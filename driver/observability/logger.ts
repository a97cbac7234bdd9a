/**
 * Structured JSON logs (pino), one line per event. Every plugin call is logged
 * once by the HTTP envelope with a request id, method, ids, duration and outcome.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { svc: 'loomd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
