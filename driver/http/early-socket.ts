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
  const server = http.createServer(onePerConnection((req, res) => {
    if (app) return app(req, res);
    const answer = req.method === 'POST' ? answers[(req.url ?? '').replace(/^\//, '')] : undefined;
    if (answer) {
      req.resume();
      res.writeHead(200, { 'Content-Type': PLUGIN_MEDIA_TYPE }).end(JSON.stringify(answer));
      return;
    }
    waiting.push([req, res]);
  }));
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
 * One call per connection. dockerd keeps idle connections to a plugin for ever and Node
 * closes them after 5 s idle: a call sent on a connection just as Node closes it fails
 * with EOF, and dockerd's plugin client then retries it with an empty body (its request
 * buffer was drained by the first attempt), which arrives as a call without arguments
 * ("PoolID: expected string"). `Connection: close` tells dockerd never to reuse a
 * connection; a new Unix socket connection costs microseconds.
 */
export function onePerConnection(listener: http.RequestListener): http.RequestListener {
  return (req, res) => {
    res.setHeader('Connection', 'close');
    listener(req, res);
  };
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
