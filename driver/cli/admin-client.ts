/** loomctl's client of loomd's admin socket: one HTTP request, JSON answer. */
import * as http from 'node:http';

/** loomd does not answer on its admin socket (not running, or another socket). */
export class Unreachable extends Error {}

/** An answer of 400 and above: `error` is loomd's message. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function request(socketPath: string, method: string, path: string, timeoutMs = 120_000, body?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, timeout: timeoutMs, headers: body !== undefined ? { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 400) {
          let msg = `${path}: HTTP ${res.statusCode} ${text}`;
          try {
            const e = (JSON.parse(text) as { error?: string }).error;
            if (e) msg = e;
          } catch {
            // not JSON: the whole text
          }
          return reject(new AdminError(res.statusCode ?? 500, msg));
        }
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`${path}: unreadable answer`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: timed out`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(err.code ?? '') ? new Unreachable(`cannot reach loomd at ${socketPath}: ${err.code}`) : err));
    req.end(body);
  });
}
