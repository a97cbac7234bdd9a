/**
 * One plugin call: its method name ("NetworkDriver.Join"), the wire schema of
 * its body, the handler, and the ids worth logging. Handlers never see express.
 */
import type { z } from 'zod/v3';
import type { Logger } from './logger';

export interface CallContext {
  /** Request id shared by every log line of this call. */
  reqId: string;
  log: Logger;
}

export interface Route<S extends z.ZodType = z.ZodType, R extends object = object> {
  method: string;
  /** Absent for calls whose body is empty (Activate, GetCapabilities...). */
  schema?: S;
  /** Returns the reply (its type is declared beside the request schema). */
  handle: (body: z.output<S>, ctx: CallContext) => Promise<R>;
  /** Ids to put on the call's log line. */
  ids?: (body: z.output<S>) => Record<string, string | undefined>;
}

/** Keeps each route's request and reply types while collecting routes of different ones in one list. */
export function route<S extends z.ZodType, R extends object>(r: Route<S, R>): Route {
  return r as unknown as Route;
}
