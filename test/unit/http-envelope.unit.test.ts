/**
 * The plugin HTTP envelope on a real (temporary) Unix socket: body handling,
 * validation errors, Docker's {Err, Error} replies, 404s, size limit, socket mode.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod/v3';
import { conflict } from '../../lib/errors';
import { route } from '../../lib/http-route';
import { CallObserver, MAX_BODY_BYTES, PLUGIN_MEDIA_TYPE, createPluginApp, listenUnix } from '../../driver/http/server';
import { createLogger, silentLogger } from '../../lib/logger';
import { timedEtcdWait } from '../../lib/cluster/etcd-wait';
import { closeServers } from '../../driver/startup/listeners';
import { pluginCall, unixRequest } from '../helpers/unix-http';

const Echo = z.object({
  NetworkID: z.string().regex(/^[a-z0-9]+$/, 'must be lower-case letters and digits'),
  Options: z.object({ mtu: z.number().int().optional() }).optional(),
});

const events: Parameters<CallObserver>[0][] = [];
const routes = [
  route({ method: 'Plugin.Activate', handle: async () => ({ Implements: ['NetworkDriver'] }) }),
  route({ method: 'Test.Echo', schema: Echo, handle: async (b) => ({ Got: b.NetworkID, Options: b.Options ?? null }) }),
  route({ method: 'Test.Optional', schema: z.object({ Name: z.string().optional() }), handle: async (b) => ({ Name: b.Name ?? '' }) }),
  route({ method: 'Test.Size', handle: async (b: unknown) => ({ Keys: Object.keys(b as object).length }) }),
  route({ method: 'Test.Conflict', handle: async () => Promise.reject(conflict('subnet in use')) }),
  route({ method: 'Test.Crash', handle: async () => Promise.reject(new TypeError('cannot read x of undefined')) }),
];

let dir: string;
let sock: string;
let server: http.Server;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-http-'));
  sock = path.join(dir, 'loom.sock');
  server = await listenUnix(createPluginApp(routes, silentLogger(), (e) => events.push(e)), sock);
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

const expectDockerError = (r: { status: number; json: { Err?: string; Error?: string } }, status: number): string => {
  expect(r.status).toBe(status);
  expect(typeof r.json?.Err).toBe('string');
  expect(r.json.Error).toBe(r.json.Err);
  return r.json.Err as string;
};

describe('plugin envelope', () => {
  test('an empty body is accepted as {} (no Content-Type, like dockerd)', async () => {
    const r = await pluginCall(sock, 'Plugin.Activate');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ Implements: ['NetworkDriver'] });
    const o = await pluginCall(sock, 'Test.Optional');
    expect(o.json).toEqual({ Name: '' });
    const blank = await unixRequest(sock, 'POST', '/Test.Optional', ' \n');
    expect(blank.json).toEqual({ Name: '' });
  });

  test('a JSON body without Content-Type is parsed; replies use the plugin media type', async () => {
    const r = await pluginCall(sock, 'Test.Echo', { NetworkID: 'abc123', Options: { mtu: 1400 } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ Got: 'abc123', Options: { mtu: 1400 } });
    const raw = await new Promise<string | undefined>((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: '/Plugin.Activate' }, (res: http.IncomingMessage) => {
        res.resume();
        resolve(res.headers['content-type']);
      });
      req.on('error', reject);
      req.end();
    });
    expect(raw).toContain(PLUGIN_MEDIA_TYPE);
  });

  test('a body without Content-Length (chunked) goes through express and answers the same as the direct path', async () => {
    const chunked = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: '/Test.Echo', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.write('{"NetworkID":');
      req.end('"abc"}');
    });
    const direct = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
      const payload = '{"NetworkID":"abc"}';
      const req = http.request({ socketPath: sock, method: 'POST', path: '/Test.Echo', headers: { 'Content-Length': payload.length } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.end(payload);
    });
    expect(chunked).toEqual({ status: 200, type: `${PLUGIN_MEDIA_TYPE}; charset=utf-8`, body: '{"Got":"abc","Options":null}' });
    expect(direct).toEqual(chunked);
  });

  test('malformed JSON is a 500 with both Err and Error', async () => {
    const r = await unixRequest(sock, 'POST', '/Test.Echo', '{"NetworkID": ');
    expect(expectDockerError(r, 500)).toMatch(/^malformed JSON body/);
  });

  test.each(['[]', '"text"', '42', 'null', 'true'])('a non-object body %s is refused', async (body) => {
    const r = await unixRequest(sock, 'POST', '/Test.Echo', body);
    expect(expectDockerError(r, 500)).toBe('request body must be a JSON object');
  });

  test('schema violations name the field', async () => {
    const wrongType = await pluginCall(sock, 'Test.Echo', { NetworkID: 5 });
    expect(expectDockerError(wrongType, 500)).toMatch(/^invalid Test\.Echo request: NetworkID: /);
    const missing = await pluginCall(sock, 'Test.Echo', {});
    expect(expectDockerError(missing, 500)).toMatch(/^invalid Test\.Echo request: NetworkID: /);
    // dockerd's retry of a call cut by a loomd restart carries no body: the error says so.
    const empty = await pluginCall(sock, 'Test.Echo');
    expect(expectDockerError(empty, 500)).toMatch(/^invalid Test\.Echo request: the request body is empty \(dockerd resends .*; run the command again \(NetworkID: /);
    const regex = await pluginCall(sock, 'Test.Echo', { NetworkID: 'ABC!' });
    expect(expectDockerError(regex, 500)).toBe('invalid Test.Echo request: NetworkID: must be lower-case letters and digits');
    const nested = await pluginCall(sock, 'Test.Echo', { NetworkID: 'a', Options: { mtu: 'big' } });
    expect(expectDockerError(nested, 500)).toMatch(/Options\.mtu: /);
  });

  test('handler errors become 500 with the message; the observer sees the kind', async () => {
    events.length = 0;
    const r = await pluginCall(sock, 'Test.Conflict', {});
    expect(expectDockerError(r, 500)).toBe('subnet in use');
    const crash = await pluginCall(sock, 'Test.Crash');
    expect(expectDockerError(crash, 500)).toBe('cannot read x of undefined');
    await pluginCall(sock, 'Plugin.Activate');
    expect(events.map((e) => [e.method, e.outcome, e.kind])).toEqual([
      ['Test.Conflict', 'error', 'conflict'],
      ['Test.Crash', 'error', 'internal'],
      ['Plugin.Activate', 'ok', undefined],
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
  });

  test('unknown methods are 404 with Err, so Docker can tell "not implemented" apart', async () => {
    const r = await pluginCall(sock, 'NetworkDriver.ProgramExternalConnectivity', { NetworkID: 'x' });
    expect(expectDockerError(r, 404)).toBe('POST /NetworkDriver.ProgramExternalConnectivity: not implemented by loom');
    const get = await unixRequest(sock, 'GET', '/Plugin.Activate');
    expect(expectDockerError(get, 404)).toMatch(/not implemented/);
  });

  test(`a body over ${MAX_BODY_BYTES} bytes is refused with a 500; one at the limit is fine`, async () => {
    const fill = (bytes: number): string => {
      const head = '{"k":"';
      return head + 'x'.repeat(bytes - head.length - 2) + '"}';
    };
    const atLimit = await unixRequest(sock, 'POST', '/Test.Size', fill(MAX_BODY_BYTES));
    expect(atLimit.status).toBe(200);
    expect(atLimit.json).toEqual({ Keys: 1 });
    const over = await unixRequest(sock, 'POST', '/Test.Size', fill(MAX_BODY_BYTES + 1));
    expect(expectDockerError(over, 500)).toBe(`request body exceeds ${MAX_BODY_BYTES} bytes`);
    // The connection handling survives: the next call works.
    expect((await pluginCall(sock, 'Plugin.Activate')).status).toBe(200);
  });
});

describe('listenUnix', () => {
  test('the socket is created with mode 0600 and the process umask is left alone', async () => {
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    const before = process.umask();
    const other = path.join(dir, 'sub', 'other.sock');
    const s = await listenUnix(createPluginApp(routes, silentLogger()), other, 0o660);
    try {
      expect(fs.statSync(other).mode & 0o777).toBe(0o660);
      expect(process.umask()).toBe(before);
    } finally {
      await new Promise((r) => s.close(r));
    }
  });

  test('a call in flight when the stop begins is answered with Connection: close and does not hold the stop', async () => {
    const slow = path.join(dir, 'slow.sock');
    let answer: (() => void) | undefined;
    const s = await listenUnix((req, res) => {
      req.resume();
      req.on('end', () => (answer = () => res.end('{}')));
    }, slow);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answered = pluginCall(slow, 'Slow', undefined, agent).then((r) => r.headers.connection);
      for (let i = 0; i < 500 && !answer; i++) await new Promise((r) => setTimeout(r, 10));
      // loomd's stop: closeServers closes the listener and the idle connections (none: a call is in flight).
      const stopped = closeServers([s]).then(() => 'stopped');
      answer?.();
      // The client must not keep (and reuse) a connection the stopping server is about to close.
      expect(await answered).toBe('close');
      // Had the connection stayed open, only closeServers' forced close (after 10 s) would end the stop.
      expect(await Promise.race([stopped, new Promise<string>((r) => setTimeout(() => r('still open after 3 s'), 3_000).unref())])).toBe('stopped');
    } finally {
      agent.destroy();
      s.closeAllConnections();
    }
  });

  test('a live socket is not stolen, a stale one is replaced, a regular file is refused', async () => {
    await expect(listenUnix(createPluginApp(routes, silentLogger()), sock)).rejects.toThrow(/another process is serving/);

    // A dead socket file, as a crash leaves it: a hard link to a socket whose server has closed.
    const live = path.join(dir, 'live.sock');
    const stale = path.join(dir, 'stale.sock');
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(live, r));
    fs.linkSync(live, stale);
    await new Promise<void>((r) => dead.close(() => r()));
    expect(fs.lstatSync(stale).isSocket()).toBe(true);
    const s = await listenUnix(createPluginApp(routes, silentLogger()), stale);
    try {
      expect((await pluginCall(stale, 'Plugin.Activate')).status).toBe(200);
    } finally {
      await new Promise((r) => s.close(r));
    }

    const file = path.join(dir, 'file.sock');
    fs.writeFileSync(file, '');
    await expect(listenUnix(createPluginApp(routes, silentLogger()), file)).rejects.toThrow(/exists and is not a socket/);
  });
});

test('a call waiting on etcd logs etcdMs when the server accounts for it (cluster mode), and not otherwise', async () => {
  const waits = [route({ method: 'Test.Etcd', handle: async () => timedEtcdWait(() => new Promise<object>((r) => setTimeout(() => r({}), 25))) })];
  for (const accountEtcdWaits of [true, false]) {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const other = path.join(dir, `etcd-${accountEtcdWaits}.sock`);
    const s = await listenUnix(createPluginApp(waits, log, undefined, { accountEtcdWaits }), other);
    try {
      expect((await pluginCall(other, 'Test.Etcd', {})).status).toBe(200);
      const call = lines.find((l) => l.msg === 'call' && l.method === 'Test.Etcd');
      if (accountEtcdWaits) expect(call?.etcdMs).toBeGreaterThanOrEqual(20);
      else expect(call).not.toHaveProperty('etcdMs');
    } finally {
      await new Promise((r) => s.close(r));
    }
  }
});
