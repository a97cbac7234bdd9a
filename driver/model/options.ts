/**
 * Turns CreateNetwork's option maps into validated settings. Docker's bridge
 * keys are honoured so compose files carry over; loom's own keys use the
 * `loom.` prefix and an unknown `loom.` key is an error; other keys are kept
 * but ignored (Docker passes daemon-wide default options to every driver).
 */
import { invalid } from '../../lib/errors';
import { isValidIfname } from './naming';
import { parseIp } from '../../lib/prefix';
import { OPT_EGRESS_RATE, OPT_INGRESS_RATE, Rates, parseRates } from './rates';

export const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_ICC = 'com.docker.network.bridge.enable_icc';
export const OPT_MASQUERADE = 'com.docker.network.bridge.enable_ip_masquerade';
export const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';
export const OPT_LOOM_MODE = 'loom.mode';
/** Cluster-wide name of an overlay; networks created with the same one on several hosts are one overlay. */
export const OPT_LOOM_OVERLAY = 'loom.overlay';
/**
 * Who gives the network's containers their default route, outside connectivity and published
 * ports: `loom` (loom's gateway, NAT and DNAT; the default) or `docker` (Docker's own
 * docker_gwbridge, as for Docker's overlay driver; then `docker port` and `docker ps` show the ports).
 */
export const OPT_LOOM_GATEWAY = 'loom.gateway';

/** loom.* keys this version understands on networks. */
export const LOOM_OPTION_KEYS: readonly string[] = [OPT_LOOM_MODE, OPT_LOOM_OVERLAY, OPT_LOOM_GATEWAY, OPT_EGRESS_RATE, OPT_INGRESS_RATE];

/** Values of loom.gateway. */
export type GatewayService = 'loom' | 'docker';

export const MTU_MIN = 68;
export const MTU_MAX = 65535;
export const DEFAULT_MTU = 1500;

export interface NetworkSettings {
  bridgeName?: string;
  mtu: number;
  icc: boolean;
  masquerade: boolean;
  /** Default host address of published ports without one. */
  hostBinding: string;
  rates: Rates;
  mode: 'bridge' | 'overlay';
  /** loom.overlay (overlay mode only). */
  overlayKey?: string;
  /** true when com.docker.network.driver.mtu was given. */
  explicitMtu: boolean;
  /** loom.gateway (default loom). */
  gateway: GatewayService;
}

/** What CreateNetwork says beside the -o map, where options depend on it. */
export interface NetworkContext {
  /** --internal */
  internal?: boolean;
}

/** Go's strconv.ParseBool, which Docker's bridge driver uses for its options. */
export function parseBool(key: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw invalid(`option ${key}: ${JSON.stringify(value)} is not a boolean`);
}

export function parseMtu(key: string, value: string): number {
  if (!/^\d{1,5}$/.test(value)) throw invalid(`option ${key}: ${JSON.stringify(value)} is not a number`);
  const mtu = Number(value);
  if (mtu < MTU_MIN || mtu > MTU_MAX) throw invalid(`option ${key}: MTU ${mtu} is outside ${MTU_MIN}..${MTU_MAX}`);
  return mtu;
}

/** Options with loom.* keys validated against `known`. */
export function checkLoomKeys(options: Record<string, string>, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (key.startsWith('loom.') && !known.includes(key)) {
      throw invalid(`unknown ${where} option ${key} (loom understands: ${known.join(', ') || 'none'})`);
    }
  }
}

export function parseNetworkSettings(options: Record<string, string>, context: NetworkContext = {}): NetworkSettings {
  checkLoomKeys(options, LOOM_OPTION_KEYS, 'network');
  const settings: NetworkSettings = { mtu: DEFAULT_MTU, icc: true, masquerade: true, hostBinding: '0.0.0.0', rates: parseRates(options), mode: 'bridge', explicitMtu: false, gateway: 'loom' };
  const name = options[OPT_BRIDGE_NAME];
  if (name !== undefined) {
    if (!isValidIfname(name)) {
      throw invalid(`option ${OPT_BRIDGE_NAME}: ${JSON.stringify(name)} is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
    }
    settings.bridgeName = name;
  }
  if (options[OPT_MTU] !== undefined) {
    settings.mtu = parseMtu(OPT_MTU, options[OPT_MTU]);
    settings.explicitMtu = true;
  }
  if (options[OPT_ICC] !== undefined) settings.icc = parseBool(OPT_ICC, options[OPT_ICC]);
  if (options[OPT_MASQUERADE] !== undefined) settings.masquerade = parseBool(OPT_MASQUERADE, options[OPT_MASQUERADE]);
  const binding = options[OPT_HOST_BINDING];
  if (binding !== undefined) {
    let ok = false;
    try {
      ok = parseIp(binding).family === 4;
    } catch {
      ok = false;
    }
    if (!ok) throw invalid(`option ${OPT_HOST_BINDING}: ${JSON.stringify(binding)} is not an IPv4 address`);
    settings.hostBinding = binding;
  }
  const mode = options[OPT_LOOM_MODE];
  if (mode !== undefined && mode !== 'bridge' && mode !== 'overlay') {
    throw invalid(`option ${OPT_LOOM_MODE}: ${JSON.stringify(mode)} is not supported (bridge or overlay)`);
  }
  if (mode === 'overlay') settings.mode = 'overlay';
  const key = options[OPT_LOOM_OVERLAY];
  if (key !== undefined) {
    if (settings.mode !== 'overlay') throw invalid(`option ${OPT_LOOM_OVERLAY} needs ${OPT_LOOM_MODE}=overlay`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(key)) throw invalid(`option ${OPT_LOOM_OVERLAY}: ${JSON.stringify(key)} must be 1-64 of A-Z a-z 0-9 _ . -`);
    settings.overlayKey = key;
  }
  settings.gateway = parseGateway(options, context);
  return settings;
}

function parseGateway(options: Record<string, string>, context: NetworkContext): GatewayService {
  const value = options[OPT_LOOM_GATEWAY];
  if (value === undefined || value === 'loom') return 'loom';
  if (value !== 'docker') {
    throw invalid(`option ${OPT_LOOM_GATEWAY}: ${JSON.stringify(value)} is not supported (loom: loom's own gateway, NAT and published ports; docker: Docker's docker_gwbridge)`);
  }
  if (context.internal) {
    throw invalid(`option ${OPT_LOOM_GATEWAY}=docker cannot be used with --internal: an internal network has no gateway of any kind (drop one of the two)`);
  }
  if (options[OPT_HOST_BINDING] !== undefined) {
    throw invalid(`option ${OPT_HOST_BINDING} has no effect with ${OPT_LOOM_GATEWAY}=docker: Docker's docker_gwbridge publishes the ports (use -p IP:HOST:CTR, or dockerd's --ip)`);
  }
  if (options[OPT_MASQUERADE] !== undefined && !parseBool(OPT_MASQUERADE, options[OPT_MASQUERADE])) {
    throw invalid(`option ${OPT_MASQUERADE}=false has no effect with ${OPT_LOOM_GATEWAY}=docker: Docker's docker_gwbridge masquerades what leaves through it`);
  }
  return 'docker';
}
