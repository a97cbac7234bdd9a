/** The policy model: validation (field paths), selectors (fast-check), the compiler and explain. */
import fc from 'fast-check';
import { compilePolicies } from '../../driver/policy/compile';
import { ep, ENDPOINTS, NET, NETWORKS, OTHER, THREE_TIER } from './policy-fixture';
import { explainEndpoint } from '../../driver/policy/explain';
import { parsePolicyText, Selector, validatePolicy } from '../../driver/policy/schema';
import { matches } from '../../driver/policy/selector';

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('not refused');
};

describe('policy validation', () => {
  const ok = { name: 'db-ingress', selector: { matchLabels: { tier: 'db' } }, ingress: [{ from: [{ selector: { matchLabels: { tier: 'api' } } }], ports: [{ protocol: 'TCP', port: 5432 }] }] };

  it('accepts a valid policy and defaults protocol and selector', () => {
    const p = validatePolicy({ name: 'x', ingress: [{ ports: [{ port: 80 }] }] });
    expect(p.selector).toEqual({});
    expect(p.ingress?.[0]?.ports?.[0]?.protocol).toBe('TCP');
    expect(validatePolicy(ok).name).toBe('db-ingress');
  });

  it('names the field path of a bad port', () => {
    const bad = { ...ok, ingress: [{ ports: [{ port: 80 }, { protocol: 'TCP', port: 70000 }] }] };
    expect(refusal(() => validatePolicy(bad))).toMatch(/ingress\[0\]\.ports\[1\]\.port: /);
  });

  it('refuses unknown keys, naming them', () => {
    expect(refusal(() => validatePolicy({ ...ok, ingres: [] }))).toMatch(/unknown key\(s\) ingres/);
    expect(refusal(() => validatePolicy({ ...ok, ingress: [{ form: [] }] }))).toMatch(/ingress\[0\]: unknown key\(s\) form/);
  });

  it('refuses bad selectors, CIDRs, names and port ranges', () => {
    expect(refusal(() => validatePolicy({ ...ok, selector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }))).toMatch(/selector\.matchExpressions\[0\]\.values: /);
    expect(refusal(() => validatePolicy({ ...ok, selector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }))).toMatch(/takes no values/);
    expect(refusal(() => validatePolicy({ ...ok, selector: { matchExpressions: [{ key: 'a', operator: 'Like', values: ['x'] }] } }))).toMatch(/selector\.matchExpressions\[0\]\.operator/);
    expect(refusal(() => validatePolicy({ ...ok, egress: [{ to: [{ cidr: '10.0.0.1/8' }] }] }))).toMatch(/egress\[0\]\.to\[0\]\.cidr: .*10\.0\.0\.0\/8/);
    expect(refusal(() => validatePolicy({ ...ok, egress: [{ to: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] }))).toMatch(/egress\[0\]\.to\[0\]\.except\[0\]: 11\.0\.0\.0\/16 is not inside/);
    expect(refusal(() => validatePolicy({ ...ok, name: 'Bad_Name' }))).toMatch(/^policy: name: /);
    expect(refusal(() => validatePolicy({ ...ok, ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }))).toMatch(/ingress\[0\]\.ports\[0\]\.endPort: endPort 80 is below port 90/);
    expect(refusal(() => validatePolicy({ ...ok, ingress: [{ ports: [{ protocol: 'ICMP', port: 1 }] }] }))).toMatch(/ICMP has no ports/);
    expect(refusal(() => validatePolicy({ name: 'x' }))).toMatch(/needs ingress or egress/);
  });

  it('parses YAML streams and JSON arrays, all or nothing', () => {
    const yaml = `name: a\ningress: []\n---\nname: b\negress:\n  - to:\n      - cidr: 198.18.0.0/15\n`;
    expect(parsePolicyText(yaml).map((p) => p.name)).toEqual(['a', 'b']);
    expect(parsePolicyText(JSON.stringify([{ name: 'a', ingress: [] }])).length).toBe(1);
    expect(refusal(() => parsePolicyText(`name: a\ningress: []\n---\nname: b\nbogus: 1\n`, 'f.yaml'))).toMatch(/^f\.yaml policy 2: unknown key\(s\) bogus/);
    expect(refusal(() => parsePolicyText(`name: a\ningress: []\n---\nname: a\ningress: []\n`))).toMatch(/appears twice/);
    expect(refusal(() => parsePolicyText('{ nope'))).toMatch(/not valid JSON/);
  });
});

describe('selectors', () => {
  const labels = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'tier'), fc.constantFrom('x', 'y', 'db'));
  it('an empty selector matches everything', () => {
    fc.assert(fc.property(labels, (l) => matches({}, l)));
  });
  it('matchLabels is the same as one In expression per label', () => {
    fc.assert(
      fc.property(labels, labels, (want, l) => {
        const a: Selector = { matchLabels: want };
        const b: Selector = { matchExpressions: Object.entries(want).map(([key, v]) => ({ key, operator: 'In' as const, values: [v] })) };
        return matches(a, l) === matches(b, l);
      }),
    );
  });
  it('In/NotIn and Exists/DoesNotExist are complements', () => {
    fc.assert(
      fc.property(labels, fc.constantFrom('a', 'b', 'tier'), fc.array(fc.constantFrom('x', 'y', 'db'), { minLength: 1 }), (l, key, values) => {
        const inn = matches({ matchExpressions: [{ key, operator: 'In', values }] }, l);
        const notIn = matches({ matchExpressions: [{ key, operator: 'NotIn', values }] }, l);
        const ex = matches({ matchExpressions: [{ key, operator: 'Exists' }] }, l);
        const dne = matches({ matchExpressions: [{ key, operator: 'DoesNotExist' }] }, l);
        return inn !== notIn && ex !== dne && (!inn || ex);
      }),
    );
  });
});

describe('compiler', () => {
  it('selects by labels within the covered networks; unknown labels are in no set', () => {
    const m = compilePolicies(THREE_TIER, NETWORKS, ENDPOINTS);
    expect(m.policies.map((p) => p.name)).toEqual(['api-ingress', 'db-ingress', 'db-no-egress']);
    const db = m.policies.find((p) => p.name === 'db-ingress');
    expect(db?.selected4).toEqual(['198.18.10.2']);
    expect(db?.selected6).toEqual(['fd00:1::2']);
    // mynet only: the api on the other network is no peer
    expect(db?.ingress?.[0]?.peers4).toEqual(['198.18.10.3']);
    expect(m.ingress4).toEqual(['198.18.10.2', '198.18.10.3', '198.18.20.3']);
    expect(m.egress4).toEqual(['198.18.10.2']);
    expect(m.networks).toEqual([NET, OTHER]);
    // the endpoint with unknown labels is pending (all its traffic dropped) and in no other set
    expect(m.pending4).toEqual(['198.18.10.5']);
    const { pending4: _p, pendingEndpoints: _e, ...rest } = m;
    expect(JSON.stringify(rest)).not.toContain('198.18.10.5');
  });
  it('pending: only local endpoints with unknown labels on covered networks', () => {
    const UNCOVERED = 'cccccccccccc0000000000000000000000000000000000000000000000000000';
    const nets = [...NETWORKS, { id: UNCOVERED, name: 'free' }];
    const db = THREE_TIER.find((p) => p.name === 'db-ingress')!; // mynet only
    const eps = [
      ...ENDPOINTS,
      ep('other-new', undefined, '198.18.20.9', OTHER),
      ep('free-new', undefined, '198.18.30.9', UNCOVERED),
      { ...ep('remote-new', undefined, '198.18.10.77'), remote: true },
      { ...ep('remote-api', { tier: 'api' }, '198.18.10.78'), remote: true },
      { ...ep('left', undefined, '198.18.10.79'), joined: false },
    ];
    const m = compilePolicies([db], nets, eps);
    expect(m.pending4).toEqual(['198.18.10.5']);
    // remote peers are peers; remote endpoints with unknown labels are in no set at all
    expect(m.policies[0]?.ingress?.[0]?.peers4).toEqual(['198.18.10.3', '198.18.10.78']);
    expect(JSON.stringify(m)).not.toContain('198.18.10.77');
    expect(JSON.stringify(m)).not.toContain('198.18.10.79'); // not joined (left): not pending
    // no policy: nothing pending
    expect(compilePolicies([], nets, eps).pending4).toEqual([]);
    expect(explainEndpoint(m, ENDPOINTS[3]!, eps).pending).toBe(true);
    expect(explainEndpoint(m, eps[5]!, eps).pending).toBe(false);
  });
  it('network by id prefix, and none when nothing matches', () => {
    const p = { ...THREE_TIER[1]!, network: NET.slice(0, 12) };
    expect(compilePolicies([p], NETWORKS, ENDPOINTS).networks).toEqual([NET]);
    expect(compilePolicies([{ ...p, network: 'nope' }], NETWORKS, ENDPOINTS).egress4).toEqual([]);
  });
  it('explain names the policies and peers', () => {
    const m = compilePolicies(THREE_TIER, NETWORKS, ENDPOINTS);
    const x = explainEndpoint(m, ENDPOINTS[0]!, ENDPOINTS);
    expect(x.ingress.selectedBy).toEqual(['db-ingress']);
    expect(x.ingress.allows[0]).toMatchObject({ policy: 'db-ingress', rule: 'ingress[0]', ports: 'TCP 5432' });
    expect(x.ingress.allows[0]?.peers[0]).toMatch(/^api /);
    expect(x.egress).toMatchObject({ restricted: true, selectedBy: ['db-no-egress'], allows: [] });
    const f = explainEndpoint(m, ENDPOINTS[2]!, ENDPOINTS);
    expect(f.ingress.restricted).toBe(false);
    expect(explainEndpoint(m, ENDPOINTS[3]!, ENDPOINTS).labelsUnknown).toBe(true);
  });
});
