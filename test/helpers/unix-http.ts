/** Minimal HTTP client over a Unix socket, shaped like Docker's plugin client (POST, no Content-Type). */
import * as http from 'node:http';
import * as net from 'node:net';

export interface UnixResponse {
  status: number;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function unixRequest(socketPath: string, method: string, urlPath: string, body?: string | Buffer, timeoutMs = 30_000): Promise<UnixResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': payload.length },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** POSTs a plugin call the way dockerd does (JSON + newline, or an empty body). */
export function pluginCall(socketPath: string, method: string, body?: unknown): Promise<UnixResponse> {
  return unixRequest(socketPath, 'POST', `/${method}`, body === undefined ? undefined : JSON.stringify(body) + '\n');
}

/**
 * The same plugin call without Node's http client: one new Unix socket connection, the request
 * bytes dockerd's Go client sends (HTTP/1.1 POST, Host, User-Agent, Content-Length, Accept,
 * Accept-Encoding), and the whole answer read until the server closes the connection (loom
 * answers with `Connection: close`). On the wire it is the call dockerd makes; it only spends
 * less client CPU than http.request (about a third of a benchmark's CPU on a busy 2-core host),
 * as dockerd's Go client does. Refuses anything but a complete answer with a Content-Length.
 */
export function lightPluginCall(socketPath: string, method: string, body?: unknown, timeoutMs = 30_000): Promise<UnixResponse> {
  const payload = body === undefined ? '' : JSON.stringify(body) + '\n';
  const head =
    `POST /${method} HTTP/1.1\r\nHost: plugin\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n` +
    `Accept: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      reject(err);
    };
    const sock = net.connect(socketPath);
    sock.setTimeout(timeoutMs, () => fail(new Error(`/${method}: timeout`)));
    sock.on('error', fail);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      if (settled) return;
      const raw = Buffer.concat(chunks);
      const sep = raw.indexOf('\r\n\r\n');
      const header = sep < 0 ? '' : raw.subarray(0, sep).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(header);
      const length = /\r\ncontent-length: *(\d+)/i.exec(header);
      if (!status || !length || raw.length - sep - 4 !== Number(length[1])) return fail(new Error(`/${method}: incomplete answer (${raw.length} bytes)`));
      settled = true;
      sock.end();
      const text = raw.subarray(sep + 4).toString('utf8');
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status: Number(status[1]), body: text, json });
    });
    sock.write(head + payload);
  });
}
