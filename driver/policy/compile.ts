/**
 * The policy compiler (pure): policies + the endpoints they may select -> the rule model the
 * firewall renders (firewall/policy-render.ts). Endpoints are plain values (labels and
 * addresses), wherever they live: remote endpoints of a cluster can be added later without
 * changing this module.
 *
 * Invariants:
 * - An endpoint whose labels are not known yet (`labels` undefined) is neither selected nor
 *   anyone's peer: nothing that needs its labels lets traffic through (fail closed). A local
 *   one on a network some policy covers is `pending`: its forwarded traffic is dropped both
 *   ways until its labels are known. A remote one (another host's, `remote`) is only in no
 *   peer set: its own host holds it pending.
 * - Sets hold addresses only; rules depend on the policies alone, so a container that starts
 *   or stops changes set elements, never rules (`structureKey`).
 * - Output is sorted (policies by name, addresses in text order): same input, same script.
 */
import { parsePrefix } from '../../lib/prefix';
import type { Peer, Policy, PortSpec } from './schema';
import { Labels, matches } from './selector';

/** One endpoint as the compiler sees it. */
export interface PolicyEndpoint {
  id: string;
  networkId: string;
  /** The container's labels; undefined until they are known. */
  labels?: Labels;
  /** Container name (explain), when known. */
  container?: string;
  /** Plain addresses (no prefix length). */
  addresses4: string[];
  addresses6: string[];
  /** Another host's endpoint on an overlay (cluster mode): a peer, never pending here. */
  remote?: boolean;
  /** False: not joined to a container (created, or left): never pending. Default true. */
  joined?: boolean;
}

/** A loom network: its id and, when known, Docker's name for it. */
export interface PolicyNetwork {
  id: string;
  name?: string;
}

export interface CidrPeer {
  family: 4 | 6;
  cidr: string;
  except: string[];
}

/** One allow rule of one policy. */
export interface CompiledRule {
  /** `ingress[0]`: the rule's place in its policy (comments, explain). */
  label: string;
  /** Set name stem for its selector peers (`p3-in0`); undefined when the rule has none. */
  set?: string;
  /** The rule allows any peer (no from/to). */
  anyPeer: boolean;
  peers4: string[];
  peers6: string[];
  /** Endpoint ids behind peers4/peers6 (explain). */
  peerEndpoints: string[];
  cidrs: CidrPeer[];
  /** Empty: every protocol and port. */
  ports: PortSpec[];
}

export interface CompiledPolicy {
  name: string;
  /** Set name stem of its selected endpoints (`p3`). */
  stem: string;
  selected4: string[];
  selected6: string[];
  selectedEndpoints: string[];
  /** undefined: the policy does not select for this direction. */
  ingress?: CompiledRule[];
  egress?: CompiledRule[];
}

export interface PolicyModel {
  policies: CompiledPolicy[];
  /** Union of the selected addresses per direction: these get default deny. */
  ingress4: string[];
  ingress6: string[];
  egress4: string[];
  egress6: string[];
  /** Networks some policy covers (connection tracking must stay on for them). */
  networks: string[];
  /** Local endpoints of covered networks whose labels are not known yet: all their forwarded traffic is dropped. */
  pending4: string[];
  pending6: string[];
  pendingEndpoints: string[];
}

/** The networks a policy covers: `*` or absent is every one; else a name, an id or an id prefix of 12+. */
export function coveredNetworks(p: Pick<Policy, 'network'>, networks: readonly PolicyNetwork[]): PolicyNetwork[] {
  const want = p.network;
  if (want === undefined || want === '*') return [...networks];
  return networks.filter((n) => n.id === want || n.name === want || (want.length >= 12 && n.id.startsWith(want)));
}

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

function compileRule(label: string, set: string, peers: Peer[] | undefined, ports: PortSpec[] | undefined, pool: PolicyEndpoint[]): CompiledRule {
  const selectorPeers = (peers ?? []).filter((p) => p.selector);
  const chosen = pool.filter((e) => e.labels && selectorPeers.some((p) => matches(p.selector ?? {}, e.labels as Labels)));
  return {
    label,
    set: selectorPeers.length ? set : undefined,
    anyPeer: peers === undefined || peers.length === 0,
    peers4: sorted(chosen.flatMap((e) => e.addresses4)),
    peers6: sorted(chosen.flatMap((e) => e.addresses6)),
    peerEndpoints: sorted(chosen.map((e) => e.id)),
    cidrs: (peers ?? []).filter((p) => p.cidr).map((p) => ({ family: parsePrefix(p.cidr as string).family, cidr: p.cidr as string, except: p.except ?? [] })),
    ports: ports ?? [],
  };
}

export function compilePolicies(policies: readonly Policy[], networks: readonly PolicyNetwork[], endpoints: readonly PolicyEndpoint[]): PolicyModel {
  const ordered = [...policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const covered = new Set<string>();
  const compiled = ordered.map((p, i): CompiledPolicy => {
    const nets = new Set(coveredNetworks(p, networks).map((n) => n.id));
    for (const n of nets) covered.add(n);
    const pool = endpoints.filter((e) => nets.has(e.networkId));
    const selected = pool.filter((e) => e.labels && matches(p.selector, e.labels));
    const stem = `p${i}`;
    return {
      name: p.name,
      stem,
      selected4: sorted(selected.flatMap((e) => e.addresses4)),
      selected6: sorted(selected.flatMap((e) => e.addresses6)),
      selectedEndpoints: sorted(selected.map((e) => e.id)),
      ingress: p.ingress?.map((r, j) => compileRule(`ingress[${j}]`, `${stem}-in${j}`, r.from, r.ports, pool)),
      egress: p.egress?.map((r, j) => compileRule(`egress[${j}]`, `${stem}-eg${j}`, r.to, r.ports, pool)),
    };
  });
  const pending = endpoints.filter((e) => !e.remote && e.joined !== false && e.labels === undefined && covered.has(e.networkId));
  const union = (dir: 'ingress' | 'egress', fam: 'selected4' | 'selected6'): string[] => sorted(compiled.filter((c) => c[dir]).flatMap((c) => c[fam]));
  return {
    policies: compiled,
    ingress4: union('ingress', 'selected4'),
    ingress6: union('ingress', 'selected6'),
    egress4: union('egress', 'selected4'),
    egress6: union('egress', 'selected6'),
    networks: sorted(covered),
    pending4: sorted(pending.flatMap((e) => e.addresses4)),
    pending6: sorted(pending.flatMap((e) => e.addresses6)),
    pendingEndpoints: sorted(pending.map((e) => e.id)),
  };
}
