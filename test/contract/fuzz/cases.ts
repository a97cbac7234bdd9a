/** One hostile request (a FuzzCase) and the verdict on loomd's answer to it. */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type { UnixResponse } from '../../helpers/unix-http';
import type { Expect } from './routes';

export interface FuzzCase {
  /** Route for the summary, or UNKNOWN. */
  method: string;
  verb: string;
  path: string;
  body: string | Buffer;
  expect: Expect;
  /** Which generator made it. */
  kind: string;
}

export const show = (body: string | Buffer): string => {
  const text = Buffer.isBuffer(body) ? `<bytes ${body.subarray(0, 60).toString('hex')}>` : body;
  return text.length > 300 ? `${JSON.stringify(text.slice(0, 300))}... (${Buffer.byteLength(body)} bytes)` : JSON.stringify(text);
};
export const describeCase = (c: FuzzCase): string => `${c.verb} ${c.path} [${c.kind}, expect ${c.expect}] body=${show(c.body)}`;

export function mkCase(method: string, body: string | Buffer, expect: Expect, kind: string, verb = 'POST', path = `/${method}`): FuzzCase {
  const c: FuzzCase = { method, verb, path, body, expect, kind };
  // fast-check prints counterexamples with this instead of dumping 256 KiB bodies.
  Object.defineProperty(c, fc.toStringMethod, { value: () => describeCase(c), enumerable: false });
  return c;
}
/** A case whose body is `body` as JSON, with the newline dockerd sends after it unless `newline` is false. */
export const jsonCase = (method: string, body: unknown, expect: Expect, kind: string, newline = true): FuzzCase =>
  mkCase(method, JSON.stringify(body) + (newline ? '\n' : ''), expect, kind);

function errorShapeProblem(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'error body is not a JSON object';
  const { Err, Error: E } = json as { Err?: unknown; Error?: unknown };
  if (typeof Err !== 'string' || Err.length === 0) return 'Err is missing or empty';
  if (E !== Err) return 'Error differs from Err';
  return undefined;
}

/**
 * What is wrong with `res` as the answer to `c` (undefined: nothing). `readonlyReply` holds the
 * fixed answer of each argument-less call.
 */
export function verdict(c: FuzzCase, res: UnixResponse, readonlyReply: Record<string, unknown>): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    return `HTTP ${res.status} with a body that is not JSON: ${show(res.body)}`;
  }
  const where = `HTTP ${res.status} ${show(res.body)}`;
  switch (c.expect) {
    case 'notfound':
      return res.status !== 404 ? `expected 404, got ${where}` : errorShapeProblem(json);
    case 'error':
      return res.status !== 500 ? `expected 500, got ${where}` : errorShapeProblem(json);
    case 'readonly':
      return res.status === 200 && isDeepStrictEqual(json, readonlyReply[c.method]) ? undefined : `expected the fixed 200 answer, got ${where}`;
    case 'noop':
      if (res.status === 200) return typeof json === 'object' && json !== null && !Array.isArray(json) ? undefined : `200 without a JSON object: ${where}`;
      return res.status === 500 ? errorShapeProblem(json) : `expected 200 or 500, got ${where}`;
  }
}
