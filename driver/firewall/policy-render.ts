/**
 * Pure rendering of network policy (driver/policy/) to nftables, checked with golden files
 * (test/unit/golden/policy/). One table per loomd, apart from its main table:
 * `loom-<instance>-policy`, in family `inet` (forward hook: routed traffic, and bridged
 * traffic when br_netfilter hands it to the IP hooks) and, on hosts without br_netfilter, also
 * in family `bridge` (forward hook of the bridge: traffic between containers of one bridge).
 * The two never see the same packet, so they carry the same rules.
 *
 * Rule flow per packet: traffic from or to a `pending` endpoint (labels not known yet, on a
 * network a policy covers) is dropped first; replies of allowed connections pass (ct established,related; in family
 * bridge, which has no conntrack on most kernels, TCP segments other than a connection's first
 * pass and UDP/ICMP replies must be allowed by rules of their own); a source
 * selected for egress must match an egress allow (else drop), then a destination selected for
 * ingress must match an ingress allow (else drop); endpoints no policy selects are untouched.
 * Peers chosen by selector are named sets of addresses: a container starting or stopping
 * changes set elements (renderPolicySets), never rules. Every rule has a counter and a comment
 * naming its policy and rule. Traffic to the host itself (the gateway, loom's and Docker's DNS)
 * takes the input hook and is not policed here.
 */
import type { CidrPeer, CompiledPolicy, CompiledRule, PolicyModel } from '../policy/compile';
import type { PortSpec } from '../policy/schema';

export type PolicyFamily = 'inet' | 'bridge';
export const POLICY_FAMILIES: readonly PolicyFamily[] = ['inet', 'bridge'];

export function policyTableName(instance: string): string {
  return `loom-${instance}-policy`;
}

interface NamedSet {
  name: string;
  v6: boolean;
  elements: string[];
}

/** Every named set of the model, in a stable order. */
export function policySets(model: PolicyModel): NamedSet[] {
  const sets: NamedSet[] = [
    { name: 'in-sel4', v6: false, elements: model.ingress4 },
    { name: 'in-sel6', v6: true, elements: model.ingress6 },
    { name: 'eg-sel4', v6: false, elements: model.egress4 },
    { name: 'eg-sel6', v6: true, elements: model.egress6 },
    { name: 'pending4', v6: false, elements: model.pending4 },
    { name: 'pending6', v6: true, elements: model.pending6 },
  ];
  for (const p of model.policies) {
    sets.push({ name: `${p.stem}-sel4`, v6: false, elements: p.selected4 }, { name: `${p.stem}-sel6`, v6: true, elements: p.selected6 });
    for (const r of [...(p.ingress ?? []), ...(p.egress ?? [])]) {
      if (r.set) sets.push({ name: `${r.set}-4`, v6: false, elements: r.peers4 }, { name: `${r.set}-6`, v6: true, elements: r.peers6 });
    }
  }
  return sets;
}

const PROTO: Record<Exclude<PortSpec['protocol'], 'ICMP'>, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

function portMatch(p: PortSpec | undefined, v6: boolean): string {
  if (!p) return '';
  if (p.protocol === 'ICMP') return v6 ? ' meta l4proto ipv6-icmp' : ' meta l4proto icmp';
  const proto = PROTO[p.protocol];
  if (p.port === undefined) return ` meta l4proto ${proto}`;
  return ` ${proto} dport ${p.port}${p.endPort !== undefined && p.endPort !== p.port ? `-${p.endPort}` : ''}`;
}

/** The match on the peer side of one rule, per family; [] when the rule has no peer of that family's kind. */
function peerMatches(r: CompiledRule, peerField: 'saddr' | 'daddr', v6: boolean): string[] {
  const ip = v6 ? 'ip6' : 'ip';
  // The selected-side match already fixes the family (`meta nfproto` would not work in family bridge).
  if (r.anyPeer) return [''];
  const out: string[] = [];
  if (r.set) out.push(`${ip} ${peerField} @${r.set}-${v6 ? 6 : 4}`);
  for (const c of r.cidrs.filter((x: CidrPeer) => (x.family === 6) === v6)) {
    out.push(`${ip} ${peerField} ${c.cidr}${c.except.length ? ` ${ip} ${peerField} != { ${c.except.join(', ')} }` : ''}`);
  }
  return out;
}

function ruleLines(p: CompiledPolicy, r: CompiledRule, dir: 'ingress' | 'egress'): string[] {
  const lines: string[] = [];
  const self = dir === 'ingress' ? 'daddr' : 'saddr';
  const peer = dir === 'ingress' ? 'saddr' : 'daddr';
  const verdict = dir === 'ingress' ? 'accept' : 'goto ingress';
  const ports: Array<PortSpec | undefined> = r.ports.length ? r.ports : [undefined];
  for (const v6 of [false, true]) {
    const ip = v6 ? 'ip6' : 'ip';
    for (const pm of peerMatches(r, peer, v6)) {
      for (const port of ports) {
        lines.push(`\t\t${ip} ${self} @${p.stem}-sel${v6 ? 6 : 4}${pm ? ` ${pm}` : ''}${portMatch(port, v6)} counter ${verdict} comment "${p.name} ${r.label}"`);
      }
    }
  }
  return lines;
}

function renderSet(s: NamedSet, withElements: boolean): string[] {
  const lines = [`\tset ${s.name} {`, `\t\ttype ${s.v6 ? 'ipv6_addr' : 'ipv4_addr'}`];
  if (withElements && s.elements.length) lines.push(`\t\telements = { ${s.elements.join(', ')} }`);
  lines.push(`\t}`);
  return lines;
}

/** The table's body for one family; `withElements` false gives the structure alone. */
function renderTable(model: PolicyModel, family: PolicyFamily, table: string, withElements: boolean): string[] {
  const lines = [`table ${family} ${table} {`, `\tcomment "network policy of loomd: replaced whole when policies change, set elements when containers do"`];
  for (const s of policySets(model)) lines.push(...renderSet(s, withElements));
  lines.push(`\tchain forward {`);
  lines.push(`\t\ttype filter hook forward priority filter; policy accept;`);
  // Fail closed: containers whose labels are not known yet forward nothing either way (the
  // gateway and the resolvers are the host's, input hook: not here).
  lines.push(`\t\tip saddr @pending4 counter drop comment "pending: labels not known yet"`);
  lines.push(`\t\tip daddr @pending4 counter drop comment "pending: labels not known yet"`);
  lines.push(`\t\tip6 saddr @pending6 counter drop comment "pending: labels not known yet"`);
  lines.push(`\t\tip6 daddr @pending6 counter drop comment "pending: labels not known yet"`);
  if (family === 'inet') {
    lines.push(`\t\tct state established,related counter accept comment "replies of allowed connections"`);
  } else {
    // Family bridge has no connection tracking without nf_conntrack_bridge (absent on many
    // kernels): TCP is policed statelessly at the connection's first packet; see docs/policy.md.
    lines.push(`\t\ttcp flags & (syn | ack) != syn counter accept comment "TCP after the handshake (no conntrack in family bridge)"`);
  }
  lines.push(`\t\tip saddr @eg-sel4 goto egress`);
  lines.push(`\t\tip6 saddr @eg-sel6 goto egress`);
  lines.push(`\t\tgoto ingress`);
  lines.push(`\t}`);
  lines.push(`\tchain egress {`);
  for (const p of model.policies) for (const r of p.egress ?? []) lines.push(...ruleLines(p, r, 'egress'));
  lines.push(`\t\tcounter drop comment "egress default deny"`);
  lines.push(`\t}`);
  lines.push(`\tchain ingress {`);
  lines.push(`\t\tip daddr @in-sel4 goto ingress-rules`);
  lines.push(`\t\tip6 daddr @in-sel6 goto ingress-rules`);
  lines.push(`\t\taccept`);
  lines.push(`\t}`);
  lines.push(`\tchain ingress-rules {`);
  for (const p of model.policies) for (const r of p.ingress ?? []) lines.push(...ruleLines(p, r, 'ingress'));
  lines.push(`\t\tcounter drop comment "ingress default deny"`);
  lines.push(`\t}`);
  lines.push(`}`);
  return lines;
}

/**
 * The whole policy state as one atomic script for `nft -f -`: each family's table is replaced
 * (created empty, deleted, written), or only deleted when the model has no policy or the
 * family is not in use.
 */
export function renderPolicyScript(model: PolicyModel, instance: string, families: readonly PolicyFamily[]): string {
  const table = policyTableName(instance);
  const lines: string[] = [];
  for (const f of POLICY_FAMILIES) lines.push(`table ${f} ${table}`, `delete table ${f} ${table}`);
  if (model.policies.length) for (const f of families) lines.push(...renderTable(model, f, table, true));
  return lines.join('\n') + '\n';
}

/** What decides whether only set elements need to change: the rendered rules without elements. */
export function policyStructure(model: PolicyModel, families: readonly PolicyFamily[]): string {
  return model.policies.length ? families.map((f) => renderTable(model, f, 'T', false).join('\n')).join('\n') : '';
}

/** Replaces every set's elements, one atomic script (the rules stay as they are). */
export function renderPolicySets(model: PolicyModel, instance: string, families: readonly PolicyFamily[]): string {
  const table = policyTableName(instance);
  const lines: string[] = [];
  for (const f of families) {
    for (const s of policySets(model)) {
      lines.push(`flush set ${f} ${table} ${s.name}`);
      if (s.elements.length) lines.push(`add element ${f} ${table} ${s.name} { ${s.elements.join(', ')} }`);
    }
  }
  return lines.join('\n') + '\n';
}
