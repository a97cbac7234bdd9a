/** Policies and endpoints shared by the policy unit tests: the three-tier example. */
import { PolicyEndpoint } from '../../driver/policy/compile';
import { parsePolicyText, Policy } from '../../driver/policy/schema';

export const NET = 'aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000';
export const OTHER = 'bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000';
export const ep = (id: string, labels: Record<string, string> | undefined, a4: string, net = NET, a6?: string): PolicyEndpoint => ({
  id: id.padEnd(64, '0'),
  networkId: net,
  labels,
  container: id,
  addresses4: [a4],
  addresses6: a6 ? [a6] : [],
});
export const THREE_TIER: Policy[] = parsePolicyText(`
name: db-ingress
network: mynet
selector: { matchLabels: { tier: db } }
ingress:
  - from: [ { selector: { matchLabels: { tier: api } } } ]
    ports: [ { protocol: TCP, port: 5432 } ]
---
name: db-no-egress
selector: { matchLabels: { tier: db } }
egress: []
---
name: api-ingress
selector: { matchLabels: { tier: api } }
ingress:
  - from: [ { selector: { matchLabels: { tier: frontend } } }, { cidr: 198.18.0.0/15, except: [198.18.9.0/24] } ]
    ports: [ { port: 8080 }, { protocol: ICMP } ]
`);
export const ENDPOINTS = [ep('db', { tier: 'db' }, '198.18.10.2', NET, 'fd00:1::2'), ep('api', { tier: 'api' }, '198.18.10.3'), ep('front', { tier: 'frontend' }, '198.18.10.4'), ep('new', undefined, '198.18.10.5'), ep('elsewhere', { tier: 'api' }, '198.18.20.3', OTHER)];
export const NETWORKS = [{ id: NET, name: 'mynet' }, { id: OTHER, name: 'other' }];

