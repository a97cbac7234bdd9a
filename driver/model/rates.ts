/**
 * Bandwidth options (`loom.egress_rate`, `loom.ingress_rate`), in tc's units:
 * 10mbit, 500kbit, 1gbit, 100mbps (bytes), ... Egress is what the container sends,
 * ingress what it receives. Pure.
 */
import { invalid } from '../../lib/errors';

export const OPT_EGRESS_RATE = 'loom.egress_rate';
export const OPT_INGRESS_RATE = 'loom.ingress_rate';

const UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
  tbps: 8e12,
};
export const MIN_RATE = 8_000;
export const MAX_RATE = 100e9;

/** Bits per second from "20mbit"; refuses anything else with a clear error. */
export function parseRate(key: string, value: string): number {
  const m = /^(\d{1,12}(?:\.\d{1,6})?)([a-z]+)$/i.exec(value.trim());
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) throw invalid(`option ${key}: ${JSON.stringify(value)} is not a rate like 10mbit, 500kbit or 1gbit`);
  const bits = Math.round(Number(m[1]) * unit);
  if (bits < MIN_RATE || bits > MAX_RATE) throw invalid(`option ${key}: ${value} is outside 8kbit..100gbit`);
  return bits;
}

export interface Rates {
  egressBps?: number;
  ingressBps?: number;
}

/** Rates from one option map (network -o or endpoint driver-opt). */
export function parseRates(options: Record<string, string>): Rates {
  const r: Rates = {};
  if (options[OPT_EGRESS_RATE] !== undefined) r.egressBps = parseRate(OPT_EGRESS_RATE, options[OPT_EGRESS_RATE]);
  if (options[OPT_INGRESS_RATE] !== undefined) r.ingressBps = parseRate(OPT_INGRESS_RATE, options[OPT_INGRESS_RATE]);
  return r;
}
