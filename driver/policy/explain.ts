/**
 * `loomctl policy explain CONTAINER` (pure): what one endpoint may send and receive under the
 * compiled model, and which policy (and rule) says so.
 */
import type { CompiledRule, PolicyEndpoint, PolicyModel } from './compile';
import type { PortSpec } from './schema';

export interface RuleExplanation {
  policy: string;
  rule: string;
  /** Peers in words: container names (or endpoint ids), CIDRs, "any peer". */
  peers: string[];
  ports: string;
}

export interface DirectionExplanation {
  /** False: no policy selects the endpoint for this direction, everything is allowed. */
  restricted: boolean;
  /** Policies that select it for this direction (default deny). */
  selectedBy: string[];
  allows: RuleExplanation[];
}

export interface EndpointExplanation {
  endpointId: string;
  networkId: string;
  container?: string;
  addresses: string[];
  labels?: Record<string, string>;
  /** The labels are not known yet: the endpoint is in no set (fail closed as a peer). */
  labelsUnknown: boolean;
  /** Pending (labels unknown on a network a policy covers): all its forwarded traffic is dropped. */
  pending: boolean;
  ingress: DirectionExplanation;
  egress: DirectionExplanation;
}

export function describePorts(ports: readonly PortSpec[]): string {
  if (!ports.length) return 'all ports and protocols';
  return ports.map((p) => (p.protocol === 'ICMP' ? 'ICMP' : p.port === undefined ? `${p.protocol} any port` : `${p.protocol} ${p.port}${p.endPort !== undefined ? `-${p.endPort}` : ''}`)).join(', ');
}

function peersOf(r: CompiledRule, byId: Map<string, PolicyEndpoint>): string[] {
  if (r.anyPeer) return ['any peer'];
  const out = r.peerEndpoints.map((id) => {
    const e = byId.get(id);
    if (e?.remote) return `${e.container ?? `endpoint ${e.id}`} on another host (${[...e.addresses4, ...e.addresses6].join(', ')})`;
    return e?.container ? `${e.container} (${[...e.addresses4, ...e.addresses6].join(', ')})` : `endpoint ${id.slice(0, 12)}`;
  });
  for (const c of r.cidrs) out.push(c.except.length ? `${c.cidr} except ${c.except.join(', ')}` : c.cidr);
  if (!out.length) out.push('no peer at the moment (no container matches the rule\'s selector)');
  return out;
}

export function explainEndpoint(model: PolicyModel, ep: PolicyEndpoint, endpoints: readonly PolicyEndpoint[]): EndpointExplanation {
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const direction = (dir: 'ingress' | 'egress'): DirectionExplanation => {
    const selecting = model.policies.filter((p) => p[dir] && p.selectedEndpoints.includes(ep.id));
    return {
      restricted: selecting.length > 0,
      selectedBy: selecting.map((p) => p.name),
      allows: selecting.flatMap((p) => (p[dir] ?? []).map((r) => ({ policy: p.name, rule: r.label, peers: peersOf(r, byId), ports: describePorts(r.ports) }))),
    };
  };
  return {
    endpointId: ep.id,
    networkId: ep.networkId,
    container: ep.container,
    addresses: [...ep.addresses4, ...ep.addresses6],
    labels: ep.labels ? { ...ep.labels } : undefined,
    labelsUnknown: ep.labels === undefined,
    pending: model.pendingEndpoints.includes(ep.id),
    ingress: direction('ingress'),
    egress: direction('egress'),
  };
}
