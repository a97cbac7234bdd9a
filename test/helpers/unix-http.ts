/**
 * Minimal HTTP client over a Unix socket, shaped like Docker's plugin client (POST, no
 * Content-Type), except that by default each call has a connection of its own (Connection: close),
 * where dockerd keeps its connections: pass an agent with keepAlive for that.
 */
import * as http from 'node:http';

export interface UnixResponse {
  status: number;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: http.IncomingHttpHeaders;
  /** Whether the call went on a connection an earlier call had used (only with a keepAlive agent). */
  reused: boolean;
}

/**
 * One request. By default on a connection of its own (closed after the answer: a test that
 * restarts loomd never finds a connection the old loomd closed); `agent` to keep connections,
 * as dockerd does.
 */
export function unixRequest(socketPath: string, method: string, urlPath: string, body?: string | Buffer, timeoutMs = 30_000, agent: http.Agent | false = false): Promise<UnixResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': payload.length },
        timeout: timeoutMs,
        agent,
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
          resolve({ status: res.statusCode ?? 0, body: text, json, headers: res.headers, reused: req.reusedSocket });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** POSTs a plugin call the way dockerd does (JSON + newline, or an empty body). */
export function pluginCall(socketPath: string, method: string, body?: unknown, agent: http.Agent | false = false): Promise<UnixResponse> {
  return unixRequest(socketPath, 'POST', `/${method}`, body === undefined ? undefined : JSON.stringify(body) + '\n', 30_000, agent);
}
