/**
 * The plugin socket, opened first thing at start-up (before express, zod, LevelDB...
 * are loaded) so that Docker is never kept waiting: the handshake calls are answered
 * at once from configuration; every other call waits, unread, until the real app is
 * ready and is then handed to it in order.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { invalid } from '../../lib/errors';

export interface EarlySocket {
  server: http.Server;
  /** Hands the socket (and the calls that waited) to the real app. */
  ready(app: http.RequestListener): void;
}

/** The content type of every answer to Docker. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';

export async function openEarlySocket(socketPath: string, mode: number, answers: Record<string, object>): Promise<EarlySocket> {
  let app: http.RequestListener | undefined;
  const waiting: Array<[http.IncomingMessage, http.ServerResponse]> = [];
  const server = pluginHttpServer((req, res) => {
    if (app) return app(req, res);
    const answer = req.method === 'POST' ? answers[(req.url ?? '').replace(/^\//, '')] : undefined;
    if (answer) {
      req.resume();
      res.writeHead(200, { 'Content-Type': PLUGIN_MEDIA_TYPE }).end(JSON.stringify(answer));
      return;
    }
    waiting.push([req, res]);
  });
  await listenOnUnixSocket(server, socketPath, mode);
  return {
    server,
    ready(real) {
      app = real;
      for (const [req, res] of waiting.splice(0)) real(req, res);
    },
  };
}

/**
 * An HTTP server for a plugin socket whose connections stay open for as long as the client
 * keeps them. dockerd keeps its idle plugin connections and sends its next call on one, which
 * spares loomd accepting and closing a connection per call. Node would close an idle
 * connection after 5 s (keepAliveTimeout) without dockerd seeing it coming: a call dockerd
 * sent just then would fail with EOF after its body was written, and dockerd's plugin client
 * retries such a call with its drained buffer, an empty body ("PoolID: expected string").
 * keepAliveTimeout 0: loomd never closes an idle connection on its own, only when it stops
 * (closeServers: close() ends the connections idle at that moment; dockerd learns of it from
 * the connection, as when loomd is killed, and only a call sent in that very instant can still
 * come back empty, which the server's answer to an empty body explains).
 * Every answer written once the stop has begun says `Connection: close` (decided as its
 * headers are written, so a call that arrived before the stop is included), and Node ends its
 * connection after it: dockerd never puts back in its pool a connection loomd is closing.
 */
export function pluginHttpServer(listener: http.RequestListener): http.Server {
  class PluginResponse extends http.ServerResponse {
    override writeHead(...args: unknown[]): this {
      if (!server.listening) this.shouldKeepAlive = false;
      return (http.ServerResponse.prototype.writeHead as (...a: unknown[]) => this).apply(this, args);
    }
  }
  const server = http.createServer({ ServerResponse: PluginResponse }, listener);
  server.keepAliveTimeout = 0;
  return server;
}

/**
 * Listens on a Unix socket created with `mode` (0600: root only). A stale socket file left
 * by a crash is replaced; a live one (another loomd) is an error; anything else is refused.
 */
export async function listenOnUnixSocket(server: http.Server, socketPath: string, mode: number): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (fs.existsSync(socketPath)) {
    if (!fs.lstatSync(socketPath).isSocket()) throw invalid(`${socketPath} exists and is not a socket; refusing to replace it`);
    if (await socketAnswers(socketPath)) throw invalid(`another process is serving ${socketPath}`);
    fs.unlinkSync(socketPath);
  }
  const oldMask = process.umask(0o777 & ~mode);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, mode);
}

function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 500).unref();
  });
}
