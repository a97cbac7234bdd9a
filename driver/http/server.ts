/**
 * The plugin's HTTP edge: express on a Unix socket. It reads the raw body
 * (Docker sends no Content-Type and empty bodies for argument-less calls),
 * validates it against the route's schema, calls the handler, and wraps the
 * outcome: 200 + JSON on success, 500 + {"Err","Error"} on failure (both field
 * names, because NetworkDriver reads Err and IpamDriver reads Error), 404 for
 * methods loom does not implement. Every call is logged once.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import express, { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { LoomError, asLoomError, invalid } from '../../lib/errors';
import { inCall } from '../../lib/cluster/etcd-wait';
import type { Logger } from '../../lib/logger';
import type { Route } from '../../lib/http-route';
import { PLUGIN_MEDIA_TYPE, listenOnUnixSocket, onePerConnection } from './early-socket';

export { PLUGIN_MEDIA_TYPE };

/** Bodies above this size are refused before parsing. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface CallObserver {
  (event: { method: string; outcome: 'ok' | 'error'; kind?: string; durationMs: number }): void;
}

function parseBody(raw: unknown): unknown {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.alloc(0);
  const text = buf.toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(`malformed JSON body: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid('request body must be a JSON object');
  }
  return parsed;
}

function describeZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

function send(res: Response, status: number, body: object): void {
  res.status(status).type(PLUGIN_MEDIA_TYPE).send(JSON.stringify(body));
}

/** `etcdMs` on a call's log line when the call waited on etcd (cluster mode). */
function etcdField(waited: (() => number) | undefined): { etcdMs?: number } {
  const ms = waited?.() ?? 0;
  return ms > 0 ? { etcdMs: Math.round(ms * 10) / 10 } : {};
}

export function createPluginApp(routes: Route[], log: Logger, observe?: CallObserver): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Docker's paths are exact ("/NetworkDriver.Join"): no case folding, no trailing slash.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.use(express.raw({ type: () => true, limit: MAX_BODY_BYTES }));

  for (const r of routes) {
    app.post(`/${r.method}`, async (req: Request, res: Response) => {
      const started = process.hrtime.bigint();
      const reqId = randomBytes(6).toString('hex');
      const callLog = log.child({ reqId, method: r.method });
      let ids: Record<string, string | undefined> = {};
      let etcdWaited: (() => number) | undefined;
      try {
        const raw = parseBody(req.body);
        let body: unknown = raw;
        if (r.schema) {
          const parsed = r.schema.safeParse(raw);
          if (!parsed.success) throw invalid(`invalid ${r.method} request: ${describeZodError(parsed.error)}`);
          body = parsed.data;
        }
        ids = r.ids ? r.ids(body) : {};
        callLog.debug({ body: raw }, 'request');
        const call = inCall(() => r.handle(body, { reqId, log: callLog.child(ids) }));
        etcdWaited = call.waited;
        const reply = await call.result;
        const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
        callLog.info({ ...ids, durationMs, ...etcdField(etcdWaited), outcome: 'ok' }, 'call');
        observe?.({ method: r.method, outcome: 'ok', durationMs });
        send(res, 200, reply);
      } catch (e) {
        const err = asLoomError(e);
        const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
        const level = err.kind === 'internal' ? 'error' : 'warn';
        callLog[level]({ ...ids, durationMs, ...etcdField(etcdWaited), outcome: 'error', kind: err.kind, err: err.message }, 'call');
        observe?.({ method: r.method, outcome: 'error', kind: err.kind, durationMs });
        send(res, 500, { Err: err.message, Error: err.message });
      }
    });
  }

  // Unknown methods: 404 so Docker can tell "not implemented" from "failed".
  app.use((req: Request, res: Response) => {
    const msg = `${req.method} ${req.path}: not implemented by loom`;
    log.info({ method: req.path.replace(/^\//, ''), outcome: 'not-implemented' }, 'call');
    send(res, 404, { Err: msg, Error: msg });
  });

  // Body parser failures (too large, aborted) land here.
  app.use((e: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (e as { status?: number }).status;
    const err =
      status === 413
        ? invalid(`request body exceeds ${MAX_BODY_BYTES} bytes`)
        : e instanceof LoomError
          ? e
          : invalid(`unreadable request: ${(e as Error).message ?? String(e)}`);
    log.warn({ method: req.path.replace(/^\//, ''), outcome: 'error', kind: err.kind, err: err.message }, 'call');
    send(res, 500, { Err: err.message, Error: err.message });
  });
  return app;
}

/** Serves `app` on a Unix socket (0600 by default: only root may talk to it). */
export async function listenUnix(app: http.RequestListener, socketPath: string, mode = 0o600): Promise<http.Server> {
  const server = http.createServer(onePerConnection(app));
  await listenOnUnixSocket(server, socketPath, mode);
  return server;
}
