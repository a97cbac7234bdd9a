/**
 * Golden-file tests of the policy renderer (test/unit/golden/policy/); rewrite them with
 * `UPDATE_GOLDEN=1 npx jest --selectProjects unit policy-render` and review the diff like code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compilePolicies } from '../../driver/policy/compile';
import { firewallNames, renderNftScript } from '../../driver/firewall/render';
import { policyStructure, renderPolicyScript, renderPolicySets } from '../../driver/firewall/policy-render';
import { ENDPOINTS, NETWORKS, THREE_TIER, ep } from './policy-fixture';

const GOLDEN = path.join(__dirname, 'golden', 'policy');
function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) throw new Error(`golden file ${name} is missing; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}

const INSTANCE = '0123456789ab';

describe('policy render', () => {
  const model = compilePolicies(THREE_TIER, NETWORKS, ENDPOINTS);
  it('three tiers, br_netfilter (inet only)', () => golden('three-tier.inet.nft', renderPolicyScript(model, INSTANCE, ['inet'])));
  it('three tiers, no br_netfilter (inet and bridge)', () => golden('three-tier.bridge.nft', renderPolicyScript(model, INSTANCE, ['inet', 'bridge'])));
  it('no policy: only deletes', () => golden('empty.nft', renderPolicyScript(compilePolicies([], NETWORKS, ENDPOINTS), INSTANCE, ['inet'])));
  it('set elements alone', () => golden('three-tier.sets.nft', renderPolicySets(model, INSTANCE, ['inet'])));
  it('a container start changes set elements, not the structure', () => {
    const more = compilePolicies(THREE_TIER, NETWORKS, [...ENDPOINTS, ep('api2', { tier: 'api' }, '198.18.10.9')]);
    expect(policyStructure(more, ['inet'])).toBe(policyStructure(model, ['inet']));
    expect(renderPolicySets(more, INSTANCE, ['inet'])).not.toBe(renderPolicySets(model, INSTANCE, ['inet']));
  });
  it('every rule has a counter', () => {
    for (const line of renderPolicyScript(model, INSTANCE, ['inet']).split('\n')) {
      if (/ (accept|drop|goto ingress) comment/.test(line)) expect(line).toMatch(/\bcounter\b/);
    }
  });
});

describe('main table and policy', () => {
  it('a network a policy covers keeps connection tracking', () => {
    const net = { id: 'a'.repeat(64), bridge: 'lm-aaaaaaaaaaaa', subnets4: ['198.18.10.0/24'], subnets6: [], internal: false, icc: true, masquerade: true, published: [] };
    const names = firewallNames(INSTANCE);
    expect(renderNftScript([net], names)).toContain('notrack');
    expect(renderNftScript([{ ...net, tracked: true }], names)).not.toContain('notrack');
  });
});
