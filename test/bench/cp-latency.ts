/**
 * Pure bookkeeping of the control-plane benchmark (control-plane.ts): endpoint identities
 * carried in MACs, propagation latency from an endpoint's publication to its programming on
 * every other host, removal convergence, and etcd's Prometheus text. No I/O here (unit-tested
 * in test/unit/cp-latency.unit.test.ts).
 */

/** Endpoint number: host index * EP_SPAN + sequence on that host. */
export const EP_SPAN = 1_000_000;

export const epNumber = (host: number, seq: number): number => host * EP_SPAN + seq;
export const hostOfEp = (ep: number): number => Math.floor(ep / EP_SPAN);

/** A locally administered unicast MAC carrying the endpoint number (02:00 + 32 bits). */
export function macOfEp(ep: number): string {
  if (!Number.isInteger(ep) || ep < 0 || ep >= 2 ** 32) throw new Error(`endpoint number out of range: ${ep}`);
  const b = [0x02, 0x00, (ep >>> 24) & 0xff, (ep >>> 16) & 0xff, (ep >>> 8) & 0xff, ep & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The endpoint number of a MAC made by macOfEp; undefined for any other MAC. */
export function epOfMac(mac: string): number | undefined {
  const m = /^02:00:([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(mac);
  if (!m) return undefined;
  return ((parseInt(m[1] as string, 16) << 24) >>> 0) + (parseInt(m[2] as string, 16) << 16) + (parseInt(m[3] as string, 16) << 8) + parseInt(m[4] as string, 16);
}

/** A publication: endpoint `ep` of host `host`, its key written at `t` (ms, wall clock). */
export interface Publication {
  ep: number;
  host: number;
  t: number;
}

/** Receiver `receiver` programmed (or removed) endpoint `ep` at `t`. */
export interface Sighting {
  ep: number;
  receiver: number;
  t: number;
}

export interface Propagation {
  /** One sample per (publication, receiver) pair that was programmed: ms after the publication. */
  perReceiver: number[];
  /** One sample per publication programmed on every receiver: ms until the last one did. */
  allDone: number[];
  /** Publications not programmed on every receiver. */
  incomplete: number;
  /** (publication, receiver) pairs never programmed. */
  missingPairs: number;
}

/**
 * Latency from each publication to its programming on every receiver except its publisher.
 * Only the first sighting per (endpoint, receiver) counts (a resync programs again).
 */
export function propagation(pubs: Publication[], seen: Sighting[], receivers: number[]): Propagation {
  const first = new Map<number, Map<number, number>>();
  for (const s of seen) {
    let m = first.get(s.ep);
    if (!m) first.set(s.ep, (m = new Map()));
    const prev = m.get(s.receiver);
    if (prev === undefined || s.t < prev) m.set(s.receiver, s.t);
  }
  const out: Propagation = { perReceiver: [], allDone: [], incomplete: 0, missingPairs: 0 };
  for (const p of pubs) {
    const m = first.get(p.ep);
    let last = -Infinity;
    let missing = 0;
    for (const r of receivers) {
      if (r === p.host) continue;
      const t = m?.get(r);
      if (t === undefined) {
        missing++;
        continue;
      }
      out.perReceiver.push(t - p.t);
      if (t > last) last = t;
    }
    if (missing) {
      out.incomplete++;
      out.missingPairs += missing;
    } else if (last > -Infinity) out.allDone.push(last - p.t);
  }
  return out;
}

export interface Convergence {
  /** Per receiver that removed every one of `eps`: ms from `t0` to its last removal. */
  perReceiver: number[];
  /** ms from `t0` until every receiver had removed every one (undefined when some never did). */
  allDone: number | undefined;
  /** Receivers that still hold at least one of `eps`. */
  pending: number[];
}

/** How long after `t0` each receiver had removed every endpoint of `eps` (its last removal). */
export function convergence(eps: number[], removals: Sighting[], receivers: number[], t0: number): Convergence {
  const want = new Set(eps);
  const last = new Map<number, Map<number, number>>();
  for (const s of removals) {
    if (!want.has(s.ep)) continue;
    let m = last.get(s.receiver);
    if (!m) last.set(s.receiver, (m = new Map()));
    m.set(s.ep, Math.max(s.t, m.get(s.ep) ?? -Infinity));
  }
  const out: Convergence = { perReceiver: [], allDone: undefined, pending: [] };
  let worst = -Infinity;
  for (const r of receivers) {
    const m = last.get(r);
    if (!m || m.size < want.size) {
      out.pending.push(r);
      continue;
    }
    const t = Math.max(...m.values()) - t0;
    out.perReceiver.push(t);
    worst = Math.max(worst, t);
  }
  if (!out.pending.length && receivers.length) out.allDone = worst;
  return out;
}

/** One sample of Prometheus text: metric name, labels, value. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (comments skipped; no timestamps expected). */
export function parseProm(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    const value = Number(m[4]);
    if (!Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** Sum of a metric over the samples whose labels match `where`. */
export function promSum(samples: PromSample[], name: string, where: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) if (s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** A metric summed per value of `label` (e.g. gRPC requests per method). */
export function promBy(samples: PromSample[], name: string, label: string, where: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || !Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    const k = s.labels[label] ?? '';
    out.set(k, (out.get(k) ?? 0) + s.value);
  }
  return out;
}
