/**
 * The plugin's HTTP edge on a Unix socket: Node's http for the known calls (the hot path),
 * express for everything else (createPluginApp says which). It reads the raw body
 * (Docker sends no Content-Type and empty bodies for argument-less calls),
 * validates it against the route's schema, calls the handler, and wraps the
 * outcome: 200 + JSON on success, 500 + {"Err","Error"} on failure (both field
 * names, because NetworkDriver reads Err and IpamDriver reads Error), 404 for
 * methods loom does not implement. Every call is logged once.
 */
import * as http from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import { z } from 'zod/v3';
import { LoomError, asLoomError, invalid } from '../../lib/errors';
import { inCall } from '../../lib/cluster/etcd-wait';
import type { Logger } from '../../lib/logger';
import type { Route } from '../../lib/http-route';
import { PLUGIN_MEDIA_TYPE, listenOnUnixSocket, pluginHttpServer } from './early-socket';

export { PLUGIN_MEDIA_TYPE };

/** Bodies above this size are refused before parsing. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface CallObserver {
  (event: { method: string; outcome: 'ok' | 'error'; kind?: string; durationMs: number }): void;
}

/** What an empty body parses to (one object, so a failed validation can tell it from `{}`). */
const EMPTY_BODY: Readonly<Record<string, never>> = Object.freeze({});

/**
 * Said when a call that needs arguments arrives without a body: dockerd's plugin client
 * resends a call whose connection failed (loomd killed or restarting mid-call) with the
 * body its first attempt drained, so the user sees this message in Docker's error.
 */
const EMPTY_BODY_HINT =
  'the request body is empty (dockerd resends a call with an empty body when its first attempt failed, e.g. while loomd restarted); run the command again';

function parseBody(raw: unknown): unknown {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.alloc(0);
  const text = buf.toString('utf8').trim();
  if (text === '') return EMPTY_BODY;
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

/** Request ids: a counter (unique within this loomd), not random bytes per call. */
let lastReqId = 0;
const PID36 = process.pid.toString(36);
const nextReqId = (): string => `${PID36}-${(++lastReqId).toString(36)}`;
/** What express puts on a string reply with the plugin media type; the direct path sends the same. */
const REPLY_CONTENT_TYPE = `${PLUGIN_MEDIA_TYPE}; charset=utf-8`;

/** The envelope of one call, whichever path read its body: parse, validate, handle, log once, answer. */
async function runCall(r: Route, rawBody: unknown, log: Logger, observe: CallObserver | undefined, accountEtcd: boolean, reply: (status: number, body: string) => void): Promise<void> {
  const started = process.hrtime.bigint();
  const reqId = nextReqId();
  let ids: Record<string, string | undefined> = {};
  let etcdWaited: (() => number) | undefined;
  try {
    const raw = parseBody(rawBody);
    let body: unknown = raw;
    if (r.schema) {
      const parsed = r.schema.safeParse(raw);
      if (!parsed.success) {
        const why = describeZodError(parsed.error);
        throw invalid(`invalid ${r.method} request: ${raw === EMPTY_BODY ? `${EMPTY_BODY_HINT} (${why})` : why}`);
      }
      body = parsed.data;
    }
    ids = r.ids ? r.ids(body) : {};
    if (log.isLevelEnabled('debug')) log.debug({ reqId, method: r.method, body: raw }, 'request');
    // The call's child logger is built only when the handler asks for it (none of the hot calls does).
    let callLog: Logger | undefined;
    const callIds = ids;
    const ctx = {
      reqId,
      get log(): Logger {
        return (callLog ??= log.child({ reqId, method: r.method, ...callIds }));
      },
    };
    const call = inCall(() => r.handle(body, ctx), accountEtcd);
    etcdWaited = call.waited;
    const result = await call.result;
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    log.info({ reqId, method: r.method, ...ids, durationMs, ...etcdField(etcdWaited), outcome: 'ok' }, 'call');
    observe?.({ method: r.method, outcome: 'ok', durationMs });
    reply(200, JSON.stringify(result));
  } catch (e) {
    const err = asLoomError(e);
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const level = err.kind === 'internal' ? 'error' : 'warn';
    log[level]({ reqId, method: r.method, ...ids, durationMs, ...etcdField(etcdWaited), outcome: 'error', kind: err.kind, err: err.message }, 'call');
    observe?.({ method: r.method, outcome: 'error', kind: err.kind, durationMs });
    reply(500, JSON.stringify({ Err: err.message, Error: err.message }));
  }
}

/**
 * The plugin app. A call to a known method with a plain body of known length (what dockerd
 * sends) is read and answered directly with Node's http, without express's router and body
 * parser (about half of a RequestAddress's CPU on this path); anything else (unknown paths,
 * oversized or encoded bodies, no Content-Length) goes to express, which answers as before.
 * Both paths share the envelope (runCall).
 */
export interface PluginAppOptions {
  /** Log each call's time spent waiting on etcd (`etcdMs`; cluster mode: lib/cluster/etcd-wait.ts). */
  accountEtcdWaits?: boolean;
}

export function createPluginApp(routes: Route[], log: Logger, observe?: CallObserver, opts: PluginAppOptions = {}): http.RequestListener {
  const accountEtcd = opts.accountEtcdWaits === true;
  const byPath = new Map<string, Route>();
  for (const r of routes) byPath.set(`/${r.method}`, r);
  // express answers only what the direct path does not (rare: Docker sends plain bodies of known
  // length), so it is loaded on the first such request, not before loomd answers its first call.
  let fallback: Promise<Express> | undefined;
  const viaExpress = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    (fallback ??= import('express').then(({ default: express }) => expressApp(express, routes, log, observe, accountEtcd)))
      .then((app) => app(req as Request, res as Response))
      .catch((e: unknown) => {
        const msg = `loom could not answer this request: ${(e as Error).message ?? String(e)}`;
        log.error({ method: req.url, outcome: 'error', kind: 'internal', err: msg }, 'call');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': REPLY_CONTENT_TYPE }).end(JSON.stringify({ Err: msg, Error: msg }));
      });
  };

  return (req, res) => {
    const r = req.method === 'POST' && req.url ? byPath.get(req.url) : undefined;
    const length = Number(req.headers['content-length']);
    if (!r || req.headers['content-length'] === undefined || !(length >= 0 && length <= MAX_BODY_BYTES) || req.headers['content-encoding'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      viaExpress(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      chunks.push(c);
    });
    req.on('error', (e) => log.warn({ method: r.method, outcome: 'error', kind: 'invalid', err: `unreadable request: ${e.message}` }, 'call'));
    req.on('end', () => {
      if (size !== length) {
        const msg = `unreadable request: request size did not match content length`;
        log.warn({ method: r.method, outcome: 'error', kind: 'invalid', err: msg }, 'call');
        res.writeHead(500, { 'Content-Type': REPLY_CONTENT_TYPE }).end(JSON.stringify({ Err: msg, Error: msg }));
        return;
      }
      void runCall(r, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), log, observe, accountEtcd, (status, body) => {
        res.writeHead(status, { 'Content-Type': REPLY_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) }).end(body);
      });
    });
  };
}

/** Serves `app` on a Unix socket (0600 by default: only root may talk to it). */
export async function listenUnix(app: http.RequestListener, socketPath: string, mode = 0o600): Promise<http.Server> {
  const server = pluginHttpServer(app);
  await listenOnUnixSocket(server, socketPath, mode);
  return server;
}

/** The express app for what the direct path does not take (unknown paths, encoded or chunked bodies, too large). */
function expressApp(express: typeof import('express'), routes: Route[], log: Logger, observe: CallObserver | undefined, accountEtcd: boolean): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Docker's paths are exact ("/NetworkDriver.Join"): no case folding, no trailing slash.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.use(express.raw({ type: () => true, limit: MAX_BODY_BYTES }));

  for (const r of routes) {
    app.post(`/${r.method}`, (req: Request, res: Response) =>
      runCall(r, req.body, log, observe, accountEtcd, (status, body) => {
        res.status(status).type(PLUGIN_MEDIA_TYPE).send(body);
      }),
    );
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
