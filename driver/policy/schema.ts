/**
 * The policy model (docs/policy.md): zod schemas of one policy document, strict (an unknown
 * key is refused), and the parser of policy files (YAML or JSON, one document, a YAML stream
 * or a JSON array). Every refusal names the field path (`ingress[0].ports[1].port: ...`).
 * Semantics follow Kubernetes NetworkPolicy: a direction key that is present (even empty)
 * selects the policy's containers for that direction (default deny); an absent `from`/`to`
 * means any peer, absent `ports` any port.
 */
import type * as Yaml from 'yaml';
import { z } from 'zod/v3';
import { invalid } from '../../lib/errors';
import { contains, containsPrefix, parsePrefix } from '../../lib/prefix';

/** A label key as Docker allows it, kept to printable characters without spaces. */
const labelKey = z.string().min(1).max(253).regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'must be a label key (letters, digits, . _ / -)');
const labelValue = z.string().max(1024);

export const matchExpressionSchema = z
  .strictObject({
    key: labelKey,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(labelValue).optional(),
  })
  .superRefine((e, ctx) => {
    const needs = e.operator === 'In' || e.operator === 'NotIn';
    if (needs && !e.values?.length) ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} needs a non-empty list of values` });
    if (!needs && e.values !== undefined) ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} takes no values` });
  });

export const selectorSchema = z.strictObject({
  matchLabels: z.record(labelKey, labelValue).optional(),
  matchExpressions: z.array(matchExpressionSchema).optional(),
});

const cidrText = z.string().superRefine((s, ctx) => {
  try {
    parsePrefix(s, 'CIDR');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const peerSchema = z
  .strictObject({
    selector: selectorSchema.optional(),
    cidr: cidrText.optional(),
    except: z.array(cidrText).optional(),
  })
  .superRefine((p, ctx) => {
    if (!p.selector && !p.cidr) ctx.addIssue({ code: 'custom', message: 'a peer needs a selector or a cidr' });
    if (p.except && !p.cidr) ctx.addIssue({ code: 'custom', path: ['except'], message: 'except needs a cidr' });
    if (p.selector && p.cidr) ctx.addIssue({ code: 'custom', path: ['cidr'], message: 'a peer is either a selector or a cidr: give two peers for both' });
    if (p.cidr && p.except) {
      let outer;
      try {
        outer = parsePrefix(p.cidr, 'CIDR');
      } catch {
        return; // reported on the field
      }
      p.except.forEach((e, i) => {
        try {
          const inner = parsePrefix(e, 'CIDR');
          if (inner.family !== outer.family || !containsPrefix(outer, inner) || !contains(outer, { family: inner.family, value: inner.base })) {
            ctx.addIssue({ code: 'custom', path: ['except', i], message: `${e} is not inside ${p.cidr}` });
          }
        } catch {
          // reported on the field
        }
      });
    }
  });

const portNumber = z.number().int().min(1).max(65535);
export const portSchema = z
  .strictObject({
    protocol: z.enum(['TCP', 'UDP', 'SCTP', 'ICMP']).default('TCP'),
    port: portNumber.optional(),
    endPort: portNumber.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.protocol === 'ICMP' && (p.port !== undefined || p.endPort !== undefined)) ctx.addIssue({ code: 'custom', path: ['port'], message: 'ICMP has no ports' });
    if (p.endPort !== undefined && p.port === undefined) ctx.addIssue({ code: 'custom', path: ['endPort'], message: 'endPort needs port' });
    if (p.endPort !== undefined && p.port !== undefined && p.endPort < p.port) ctx.addIssue({ code: 'custom', path: ['endPort'], message: `endPort ${p.endPort} is below port ${p.port}` });
  });

export const ingressRuleSchema = z.strictObject({ from: z.array(peerSchema).optional(), ports: z.array(portSchema).optional() });
export const egressRuleSchema = z.strictObject({ to: z.array(peerSchema).optional(), ports: z.array(portSchema).optional() });

export const policySchema = z.strictObject({
  /** Unique on the host; a DNS label (it names nft comments and counters). */
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and -, at most 63'),
  /** A loom network's name or id (at least 12 characters of it), or `*` (the default): every loom network. */
  network: z.string().min(1).max(128).regex(/^[A-Za-z0-9*][A-Za-z0-9_.*-]*$/, 'must be a network name, an id or *').optional(),
  /** The containers this policy applies to; `{}` (the default) selects every container. */
  selector: selectorSchema.default({}),
  ingress: z.array(ingressRuleSchema).optional(),
  egress: z.array(egressRuleSchema).optional(),
});

export type Selector = z.infer<typeof selectorSchema>;
export type Peer = z.infer<typeof peerSchema>;
export type PortSpec = z.infer<typeof portSchema>;
export type IngressRule = z.infer<typeof ingressRuleSchema>;
export type EgressRule = z.infer<typeof egressRuleSchema>;
export type Policy = z.infer<typeof policySchema>;

/** `ingress[0].ports[1].port` */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(document)';
}

/** Validates one parsed document; throws `invalid` listing every problem with its field path. */
export function validatePolicy(doc: unknown, where = 'policy'): Policy {
  const r = policySchema.safeParse(doc);
  if (r.success) {
    if (r.data.ingress === undefined && r.data.egress === undefined) throw invalid(`${where}: needs ingress or egress (an empty list denies that direction)`);
    return r.data;
  }
  const lines = r.error.issues.map((i) => {
    const unknown = i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message;
    return i.path.length ? `${fieldPath(i.path)}: ${unknown}` : unknown;
  });
  throw invalid(`${where}: ${lines.join('; ')}`);
}

/**
 * Parses a policy file: JSON (an object or an array of them) or YAML (one document or a
 * stream separated by `---`). All or nothing: one bad policy refuses the file.
 */
export function parsePolicyText(text: string, file = 'policy file'): Policy[] {
  let docs: unknown[];
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (err) {
      throw invalid(`${file}: not valid JSON: ${(err as Error).message}`);
    }
    docs = Array.isArray(v) ? v : [v];
  } else {
    // yaml (70-odd modules) is loaded on the first YAML file only, not at loomd's start-up.
    const { parseAllDocuments } = require('yaml') as typeof Yaml;
    const parsed = parseAllDocuments(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    docs = [];
    for (const d of list) {
      if (d.errors.length) throw invalid(`${file}: not valid YAML: ${d.errors[0]?.message ?? 'unreadable'}`);
      const js: unknown = d.toJS();
      if (js !== null && js !== undefined) docs.push(js);
    }
  }
  if (docs.length === 0) throw invalid(`${file}: holds no policy`);
  const policies = docs.map((d, i) => validatePolicy(d, docs.length > 1 ? `${file} policy ${i + 1}` : file));
  const seen = new Set<string>();
  for (const p of policies) {
    if (seen.has(p.name)) throw invalid(`${file}: name ${p.name} appears twice`);
    seen.add(p.name);
  }
  return policies;
}
