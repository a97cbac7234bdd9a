/**
 * Network policy across hosts and the fail-closed window: the policy service in cluster mode
 * (etcd's copy followed through watch callbacks, written there first by apply/rm, LevelDB
 * keeping the last copy), remote endpoints as peers, and pending endpoints (labels unknown).
 */
import type Dockerode from 'dockerode';
import { MemoryKv } from '../../lib/kv';
import { silentLogger } from '../../lib/logger';
import type { CommandRunner } from '../../driver/kernel/command';
import { remotePolicyEndpoints } from '../../driver/cluster/policy-peers';
import type { RemoteEndpoint } from '../../driver/cluster/records';
import { PolicyFirewall } from '../../driver/firewall/policy-firewall';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import type { NetworkLookup } from '../../driver/network/network-table';
import { PolicyService, PolicyServiceDeps, UNCOVERED_LABELS_DELAY_MS } from '../../driver/ops/policy-service';
import { PolicyRecord, PolicyRepository } from '../../driver/store/policy-repo';
import { sharedInspect } from '../../driver/dns/learn';
import { parsePolicyText } from '../../driver/policy/schema';

const NET = 'c'.repeat(64);
const net = { id: NET, overlay: { key: 'ov1' } } as NetworkRecord;
const eps: EndpointRecord[] = [];
const addEp = (id: string, address: string): EndpointRecord => {
  const e = { networkId: NET, id: id.padEnd(64, '0'), address: `${address}/24`, sandboxKey: `/var/run/docker/netns/${id}` } as EndpointRecord;
  eps.push(e);
  return e;
};
const lookup: NetworkLookup = { list: () => [{ record: net, endpoints: eps }], get: () => net, byOverlay: () => net, withNetworkLock: (_id, fn) => fn() };
const labelsById = new Map<string, Record<string, string>>();
let dockerDelay = Promise.resolve();
const docker = {
  getNetwork: () => ({ inspect: async () => ({ Containers: Object.fromEntries(eps.map((e) => [`c-${e.id}`, { EndpointID: e.id }])) }) }),
  getContainer: (id: string) => ({
    inspect: async () => {
      await dockerDelay;
      const ep = id.slice(2);
      return { Id: id, Name: `/${ep.replace(/0+$/, '')}`, Config: { Labels: labelsById.get(ep) ?? {} }, NetworkSettings: { Networks: { appnet: { NetworkID: NET, EndpointID: ep } } } };
    },
  }),
} as unknown as Dockerode;

const scripts: string[] = [];
const nft: CommandRunner = async (_cmd, args, stdin) => {
  if (args[0] === '-f') {
    scripts.push(stdin ?? '');
    return { code: 0, stdout: '', stderr: '' };
  }
  return { code: 1, stdout: '', stderr: 'No such file or directory' };
};

const POLICY = `name: db-ingress\nnetwork: appnet\nselector: { matchLabels: { tier: db } }\ningress:\n  - from: [ { selector: { matchLabels: { tier: api } } } ]\n    ports: [ { port: 5432 } ]\n`;
const record = (text: string, at = '2026-01-01T00:00:00.000Z'): PolicyRecord => ({ policy: parsePolicyText(text)[0]!, appliedAt: at });

function build(kv: MemoryKv, extra: Partial<PolicyServiceDeps> = {}): PolicyService {
  return new PolicyService({
    repo: new PolicyRepository(kv),
    networks: lookup,
    firewall: new PolicyFirewall(silentLogger(), '0123456789ab', () => ['inet'], nft),
    syncMainFirewall: async () => undefined,
    inspect: sharedInspect(async () => docker),
    log: silentLogger(),
    ...extra,
  });
}
const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
const elements = (script: string | undefined, set: string): string => new RegExp(`add element inet \\S+ ${set} \\{ ([^}]*) \\}`).exec(script ?? '')?.[1]?.trim() ?? '';

afterEach(() => {
  eps.length = 0;
  labelsById.clear();
  scripts.length = 0;
});

test('fail closed: a new container on a covered network is pending until its labels are known', async () => {
  const svc = build(new MemoryKv());
  await svc.load();
  const db = addEp('db', '198.18.10.2');
  labelsById.set(db.id, { tier: 'db' });
  svc.joined(net, db);
  await flush();
  await svc.apply(POLICY);
  expect(svc.compile().pending4).toEqual([]);

  // Docker answers late: meanwhile the new container is pending (dropped both ways).
  let answer!: () => void;
  dockerDelay = new Promise((r) => (answer = r));
  const api = addEp('api', '198.18.10.3');
  labelsById.set(api.id, { tier: 'api' });
  svc.joined(net, api); // the Join itself asks for the sync (in the background)
  await flush();
  expect(elements(scripts.at(-1), 'pending4')).toBe('198.18.10.3');
  expect(svc.explain('api'.padEnd(64, '0'))[0]).toMatchObject({ pending: true, labelsUnknown: true });
  answer();
  await flush();
  expect(elements(scripts.at(-1), 'pending4')).toBe('');
  expect(elements(scripts.at(-1), 'p0-in0-4')).toBe('198.18.10.3');
  // Leave: out of every set at once, pending included (its address may be reused).
  delete (api as { sandboxKey?: string }).sandboxKey;
  svc.left(net, api);
  await flush();
  expect(scripts.at(-1)).not.toContain('198.18.10.3');
  dockerDelay = Promise.resolve();
  await svc.stop();
});

test('no policy covers the network: nobody is pending', async () => {
  const svc = build(new MemoryKv());
  await svc.load();
  addEp('x', '198.18.10.9');
  expect(svc.compile().pending4).toEqual([]);
  await svc.stop();
});

test('cluster mode: apply and rm write etcd first; a refused write changes nothing', async () => {
  const kv = new MemoryKv();
  const writes: Array<{ put: string[]; remove: string[] }> = [];
  let down = false;
  const svc = build(kv, {
    cluster: {
      write: async (put, remove) => {
        if (down) throw new Error('etcd unreachable');
        writes.push({ put: put.map((r) => r.policy.name), remove });
      },
    },
  });
  await svc.load();
  down = true;
  await expect(svc.apply(POLICY)).rejects.toThrow('etcd unreachable');
  expect(await new PolicyRepository(kv).listPolicies()).toEqual([]);
  expect(scripts).toEqual([]);
  down = false;
  expect((await svc.apply(POLICY)).created).toEqual(['db-ingress']);
  expect(writes).toEqual([{ put: ['db-ingress'], remove: [] }]);
  // The watch then delivers the same record: nothing more happens.
  const n = scripts.length;
  svc.clusterEvent('db-ingress', svc.list()[0]);
  await svc.clusterIdle();
  expect(scripts.length).toBe(n);
  down = true;
  await expect(svc.remove('db-ingress')).rejects.toThrow('etcd unreachable');
  expect(svc.list().map((r) => r.policy.name)).toEqual(['db-ingress']);
  down = false;
  expect(await svc.remove('db-ingress')).toBe(true);
  expect(writes.at(-1)).toEqual({ put: [], remove: ['db-ingress'] });
  await svc.stop();
});

test('cluster mode: every host follows etcd; LevelDB keeps the last copy; invalid records are ignored', async () => {
  const kv = new MemoryKv();
  const svc = build(kv, { cluster: { write: async () => undefined } });
  await svc.load();
  const a = record(POLICY);
  const b = record(POLICY.replace('db-ingress', 'other').replace('5432', '6000'));
  svc.clusterResync([a, b]);
  await svc.clusterIdle();
  expect(svc.list().map((r) => r.policy.name)).toEqual(['db-ingress', 'other']);
  expect(scripts.at(-1)).toMatch(/table inet loom-0123456789ab-policy \{/);

  // An update, then a deletion, by events.
  svc.clusterEvent('other', record(POLICY.replace('db-ingress', 'other').replace('5432', '7000'), '2026-01-02T00:00:00.000Z'));
  svc.clusterEvent('db-ingress', undefined);
  await svc.clusterIdle();
  expect(svc.list().map((r) => [r.policy.name, r.policy.ingress?.[0]?.ports?.[0]?.port])).toEqual([['other', 7000]]);

  // An invalid record (written by hand): ignored, the last valid copy stays, also at a resync.
  svc.clusterEvent('other', { policy: { name: 'other', bogus: 1 }, appliedAt: 'x' } as unknown as PolicyRecord);
  svc.clusterResync([{ policy: { name: 'other', bogus: 1 }, appliedAt: 'x' } as unknown as PolicyRecord]);
  await svc.clusterIdle();
  expect(svc.list().map((r) => r.policy.ingress?.[0]?.ports?.[0]?.port)).toEqual([7000]);

  // A restart while etcd is unreachable (no resync comes): the stored copy is enforced.
  const again = build(kv, { cluster: { write: async () => undefined } });
  await again.load();
  expect(again.list().map((r) => r.policy.name)).toEqual(['other']);
  expect(JSON.stringify(again.compile())).toBe(JSON.stringify(svc.compile()));

  // A resync without it removes it.
  svc.clusterResync([]);
  await svc.clusterIdle();
  expect(svc.list()).toEqual([]);
  expect(await new PolicyRepository(kv).listPolicies()).toEqual([]);
  await svc.stop();
  await again.stop();
});

test('cluster mode: remote endpoints are peers by their published labels; learned labels are published', async () => {
  const remote = new Map<string, Map<string, RemoteEndpoint>>();
  const put = (host: string, id: string, ip: string, labels?: Record<string, string>): void => {
    const m = remote.get('ov1') ?? new Map<string, RemoteEndpoint>();
    m.set(`${host}/${id}`, { overlay: 'ov1', host, endpointId: id, mac: '02:00:00:00:00:01', ip, vtep: '10.0.0.2', names: [id], ...(labels ? { labels } : {}) });
    remote.set('ov1', m);
  };
  const published: string[] = [];
  const svc = build(new MemoryKv(), {
    remote: () => remotePolicyEndpoints(new Map([['ov1', NET]]), remote),
    onLabels: (_n, e) => published.push(e),
  });
  await svc.load();
  const db = addEp('db', '198.18.10.2');
  labelsById.set(db.id, { tier: 'db' });
  svc.joined(net, db);
  await flush();
  expect(published).toEqual([]); // no policy anywhere yet: asked for a moment later
  await new Promise((r) => setTimeout(r, UNCOVERED_LABELS_DELAY_MS + 100));
  expect(published).toEqual([db.id]);
  expect(svc.labelsOf(NET, db.id)).toEqual({ tier: 'db' });
  put('hostA', 'api', '198.18.10.30', { tier: 'api' });
  put('hostC', 'front', '198.18.10.40', { tier: 'frontend' });
  put('hostC', 'unknown', '198.18.10.50');
  await svc.apply(POLICY);
  const m = svc.compile();
  expect(m.policies[0]?.ingress?.[0]?.peers4).toEqual(['198.18.10.30']);
  expect(m.pending4).toEqual([]); // remote endpoints with unknown labels: in no set, not pending here
  expect(JSON.stringify(m)).not.toContain('198.18.10.50');
  expect(svc.explain('db')[0]?.ingress.allows[0]?.peers[0]).toMatch(/^api@hostA on another host/);
  // A remote endpoint selected by a policy here (db on another host) gets its ingress checked here too.
  put('hostB', 'db2', '198.18.10.60', { tier: 'db' });
  expect(svc.compile().ingress4).toEqual(['198.18.10.2', '198.18.10.60']);
  await svc.stop();
});

test('remotePolicyEndpoints: only overlays this host has, under their local network id', () => {
  const remote = new Map([
    ['ov1', new Map([['h/e1', { overlay: 'ov1', host: 'h', endpointId: 'e1', mac: 'm', ip: '198.18.10.7', ip6: 'fd00::7', vtep: 'v', labels: { a: 'b' } } as RemoteEndpoint]])],
    ['ov2', new Map([['h/e2', { overlay: 'ov2', host: 'h', endpointId: 'e2', mac: 'm', ip: '198.18.11.7', vtep: 'v' } as RemoteEndpoint]])],
  ]);
  expect(remotePolicyEndpoints(new Map([['ov1', NET]]), remote)).toEqual([
    { id: 'h/e1', networkId: NET, labels: { a: 'b' }, container: 'e1@h', addresses4: ['198.18.10.7'], addresses6: ['fd00::7'], remote: true },
  ]);
});
