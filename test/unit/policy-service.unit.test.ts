/**
 * The policy service with an in-memory store, a fake network table, a fake Docker and the
 * real applier over a recording nft: labels learned after Join, set-only applies on container
 * starts, labels dropped on Leave, all-or-nothing apply, drift repaired.
 */
import type Dockerode from 'dockerode';
import { MemoryKv } from '../../lib/kv';
import { silentLogger } from '../../lib/logger';
import type { CommandRunner } from '../../driver/kernel/command';
import { PolicyFirewall } from '../../driver/firewall/policy-firewall';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import type { NetworkLookup } from '../../driver/network/network-table';
import { PolicyService, UNCOVERED_LABELS_DELAY_MS } from '../../driver/ops/policy-service';
import { PolicyRepository } from '../../driver/store/policy-repo';
import { JoinedInspect, sharedInspect } from '../../driver/dns/learn';

const NET = 'a'.repeat(64);
const net = { id: NET } as NetworkRecord;
const eps: EndpointRecord[] = [];
const addEp = (id: string, address: string): EndpointRecord => {
  const e = { networkId: NET, id: id.padEnd(64, '0'), address: `${address}/24`, sandboxKey: `/var/run/docker/netns/${id}` } as EndpointRecord;
  eps.push(e);
  return e;
};
const lookup: NetworkLookup = {
  list: () => [{ record: net, endpoints: eps }],
  get: () => net,
  byOverlay: () => undefined,
  withNetworkLock: (_id, fn) => fn(),
};
const labelsById = new Map<string, Record<string, string>>();
const docker = {
  getNetwork: () => ({ inspect: async () => ({ Containers: Object.fromEntries(eps.map((e) => [`c-${e.id}`, { EndpointID: e.id }])) }) }),
  getContainer: (id: string) => ({
    inspect: async () => {
      const ep = id.slice(2);
      return { Id: id, Name: `/${ep.replace(/0+$/, "")}`, Config: { Labels: labelsById.get(ep) ?? {} }, NetworkSettings: { Networks: { appnet: { NetworkID: NET, EndpointID: ep } } } };
    },
  }),
} as unknown as Dockerode;

let scripts: string[] = [];
let kernelTable: string | undefined;
const nft: CommandRunner = async (_cmd, args, stdin) => {
  if (args[0] === '-f') {
    scripts.push(stdin ?? '');
    if (/^table inet \S+ \{/m.test(stdin ?? '')) kernelTable = 'present';
    else if (/^delete table inet/m.test(stdin ?? '')) kernelTable = undefined;
    return { code: 0, stdout: '', stderr: '' };
  }
  if (args[0] === '-j' && args[3] === 'inet' && kernelTable) return { code: 0, stdout: '{"nftables": []}', stderr: '' };
  return { code: 1, stdout: '', stderr: 'No such file or directory' };
};

const POLICY = `name: db-ingress\nnetwork: appnet\nselector: { matchLabels: { tier: db } }\ningress:\n  - from: [ { selector: { matchLabels: { tier: api } } } ]\n    ports: [ { port: 5432 } ]\n`;

function build(kv: MemoryKv, mainSyncs: { n: number }): PolicyService {
  return new PolicyService({
    repo: new PolicyRepository(kv),
    networks: lookup,
    firewall: new PolicyFirewall(silentLogger(), '0123456789ab', () => ['inet'], nft),
    syncMainFirewall: async () => void mainSyncs.n++,
    inspect: sharedInspect(async () => docker),
    log: silentLogger(),
  });
}

const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('labels after Join, set-only updates, Leave drops the allow, repair re-applies', async () => {
  const kv = new MemoryKv();
  const main = { n: 0 };
  const svc = build(kv, main);
  await svc.load();
  const db = addEp('db', '198.18.10.2');
  labelsById.set(db.id, { tier: 'db' });
  svc.joined(net, db);
  await flush();

  expect(await svc.apply(POLICY, 'p.yaml')).toEqual({ created: ['db-ingress'], updated: [], unchanged: [] });
  expect(scripts.at(-1)).toMatch(/table inet loom-0123456789ab-policy \{/);
  expect(main.n).toBe(1); // the network became covered: tracking on
  expect(svc.covers(NET)).toBe(true);
  expect(await svc.apply(POLICY)).toEqual({ created: [], updated: [], unchanged: ['db-ingress'] });

  // An invalid file: refused, nothing stored or applied.
  const before = scripts.length;
  await expect(svc.apply(POLICY.replace('5432', '0'))).rejects.toThrow(/ingress\[0\]\.ports\[0\]\.port/);
  expect(scripts.length).toBe(before);
  expect((await new PolicyRepository(kv).listPolicies()).map((p) => p.policy.ingress?.[0]?.ports?.[0]?.port)).toEqual([5432]);

  // A container start changes set elements only.
  const api = addEp('api', '198.18.10.3');
  labelsById.set(api.id, { tier: 'api' });
  svc.joined(net, api);
  await flush();
  expect(scripts.at(-1)).toMatch(/^flush set inet loom-0123456789ab-policy/);
  expect(scripts.at(-1)).toContain('add element inet loom-0123456789ab-policy p0-in0-4 { 198.18.10.3 }');
  expect(svc.explain('api')[0]?.ingress.restricted).toBe(false);
  expect(svc.explain('db')[0]?.ingress.allows[0]?.peers[0]).toMatch(/^api /);

  // Leave: the api's address leaves the sets at once (no stale allow).
  svc.left(net, api);
  eps.splice(eps.indexOf(api), 1);
  await flush();
  expect(scripts.at(-1)).not.toContain('198.18.10.3');
  expect((await new PolicyRepository(kv).listLabels()).map((l) => l.container)).toEqual(['db']);

  // A restarted loomd renders the same from the store.
  const again = build(kv, { n: 0 });
  await again.load();
  expect(JSON.stringify(again.compile())).toBe(JSON.stringify(svc.compile()));

  // Drift: the table deleted behind loom's back is re-applied and counted.
  kernelTable = undefined;
  expect(await svc.repair()).toMatchObject({ 'policy-table': 1 });
  expect(kernelTable).toBe('present');

  // Removing the last policy deletes the table and turns tracking back off.
  expect(await svc.remove('db-ingress')).toBe(true);
  expect(scripts.at(-1)).not.toMatch(/\{/);
  expect(main.n).toBe(2);
  expect(await svc.remove('db-ingress')).toBe(false);
  await svc.stop();
});

test('one inspect per Join serves discovery and policy; failures are asked again', async () => {
  let calls = 0;
  let fail = true;
  const d = {
    getNetwork: () => ({ inspect: async () => ({ Containers: { c1: { EndpointID: 'e1' } } }) }),
    getContainer: () => ({
      inspect: async () => {
        calls++;
        if (fail) throw new Error('not yet');
        return { Id: 'c1', Name: '/c1', NetworkSettings: { Networks: { n: { EndpointID: 'e1' } } } };
      },
    }),
  } as unknown as Dockerode;
  const inspect = sharedInspect(async () => d);
  await expect(inspect('n', 'e1')).rejects.toThrow('not yet');
  fail = false;
  const [a, b] = await Promise.all([inspect('n', 'e1'), inspect('n', 'e1')]);
  expect(a).toBe(b);
  expect((await inspect('n', 'e1')).Id).toBe('c1');
  expect(calls).toBe(2);
});

test('while no policy exists, labels are asked for only after a delay: a container gone before never costs an inspect; the first policy asks at once', async () => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
  try {
    const asked: string[] = [];
    const counting = (async (networkId: string, endpointId: string) => {
      asked.push(endpointId.replace(/0+$/, ''));
      return { Id: `c-${endpointId}`, Name: `/${endpointId.replace(/0+$/, '')}`, Config: { Labels: labelsById.get(endpointId) ?? {} }, NetworkSettings: { Networks: { appnet: { NetworkID: networkId, EndpointID: endpointId } } } };
    }) as JoinedInspect;
    const svc = new PolicyService({
      repo: new PolicyRepository(new MemoryKv()),
      networks: lookup,
      firewall: new PolicyFirewall(silentLogger(), '0123456789ab', () => ['inet'], nft),
      syncMainFirewall: async () => undefined,
      inspect: counting,
      log: silentLogger(),
    });
    await svc.load();
    const brief = addEp('brief', '198.18.10.7');
    svc.joined(net, brief);
    jest.advanceTimersByTime(UNCOVERED_LABELS_DELAY_MS - 100);
    svc.left(net, brief);
    eps.splice(eps.indexOf(brief), 1);
    jest.advanceTimersByTime(1_000);
    expect(asked).toEqual([]);

    const stays = addEp('stays', '198.18.10.8');
    svc.joined(net, stays);
    jest.advanceTimersByTime(UNCOVERED_LABELS_DELAY_MS + 10);
    await jest.runOnlyPendingTimersAsync();
    expect(asked).toEqual(['stays']);

    const fresh = addEp('fresh', '198.18.10.9');
    svc.joined(net, fresh);
    const applied = svc.apply(POLICY.replace('db-ingress', 'covering'));
    await jest.advanceTimersByTimeAsync(10);
    await applied;
    expect(asked).toEqual(['stays', 'fresh']); // asked before the first policy was applied, not a second later
    eps.splice(eps.indexOf(stays), 1);
    eps.splice(eps.indexOf(fresh), 1);
    await svc.remove('covering');
    await svc.stop();
  } finally {
    jest.useRealTimers();
  }
});
