/**
 * Recorded dockerd traces (../shared/docker-traces, copied to test/fixtures/docker-traces)
 * turned into request streams for loom. The recording plugin was called "tracer" and
 * used 10.x subnets; bodies are translated to loom's address spaces and to the test
 * range (10.A.0.B -> 198.19.A.B, 172.18.x.y -> 198.18.x.y), and pool ids and automatic
 * subnets are mapped to the ones loom answers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const TRACE_DIR = path.resolve(__dirname, '..', 'fixtures', 'docker-traces');

/** Every recorded trace: dockerd 20.10 talking to a recording plugin, legacy and managed, single host and swarm. */
export const TRACE_FILES = [
  'legacy-basic.jsonl',
  'legacy-options.jsonl',
  'legacy-ops-restarts.jsonl',
  'legacy-errors-swarmnode.jsonl',
  'managed-local.jsonl',
  'managed-swarm-manager-A.jsonl',
  'managed-swarm-worker-B.jsonl',
];

export interface TraceCall {
  seq: number;
  url: string;
  method: string;
  req: unknown;
  status: number;
  resp: unknown;
  /** The last marker line before this call ("docker run --ip ..."). */
  marker: string;
}

export function loadTrace(file: string): TraceCall[] {
  const out: TraceCall[] = [];
  let marker = '';
  for (const line of fs.readFileSync(path.join(TRACE_DIR, file), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line) as Record<string, unknown>;
    if (typeof o.marker === 'string') {
      marker = o.marker;
      continue;
    }
    out.push({
      seq: o.seq as number,
      url: o.url as string,
      method: (o.url as string).replace(/^\//, ''),
      req: o.req,
      status: o.status as number,
      resp: o.resp,
      marker,
    });
  }
  return out;
}

/** Rewrites strings inside a recorded body, recursively. */
export class TraceTranslator {
  /** translated tracer PoolID -> loom PoolID */
  readonly poolIds = new Map<string, string>();
  /** "198.19.98." -> "198.19.200." for automatic /24 subnets chosen differently by loom */
  private readonly prefixes = new Map<string, string>();

  text(s: string): string {
    const t = this.rewrite(s);
    return this.poolIds.get(t) ?? t;
  }

  /** Address spaces, subnets and automatic prefixes, without the pool id mapping. */
  private rewrite(s: string): string {
    let t = s
      .replace(/tracerlocal/g, 'LoomLocal')
      .replace(/tracerglobal/g, 'LoomGlobal')
      .replace(/\b10\.(\d{1,3})\.0\.(\d{1,3})\b/g, '198.19.$1.$2')
      .replace(/\b172\.18\.(\d{1,3})\.(\d{1,3})\b/g, '198.18.$1.$2');
    for (const [from, to] of this.prefixes) t = t.split(from).join(to);
    return t;
  }

  value(v: unknown): unknown {
    if (typeof v === 'string') return this.text(v);
    if (Array.isArray(v)) return v.map((x) => this.value(x));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.value(x);
      return out;
    }
    return v;
  }

  /** Remembers loom's answer to a RequestPool so later calls use loom's pool id and subnet. */
  learnPool(traceResp: { PoolID?: string; Pool?: string }, loomResp: { PoolID: string; Pool: string }): void {
    if (traceResp.Pool) {
      const tracePool = this.rewrite(traceResp.Pool);
      if (tracePool !== loomResp.Pool && /\.0\/24$/.test(tracePool) && /\.0\/24$/.test(loomResp.Pool)) {
        this.prefixes.set(tracePool.replace(/0\/24$/, ''), loomResp.Pool.replace(/0\/24$/, ''));
      }
    }
    if (traceResp.PoolID) this.poolIds.set(this.rewrite(traceResp.PoolID), loomResp.PoolID);
  }
}
