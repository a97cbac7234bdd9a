/** ServiceDiscovery's decisions with a fake kernel, a fake Docker API and a fake cluster view (no namespace is entered). */
import { EventEmitter } from 'node:events';
import type Dockerode from 'dockerode';
import { silentLogger } from '../../lib/logger';
import type { RemoteEndpoint } from '../../driver/cluster/records';
import { ServiceDiscovery, ResolverKernel } from '../../driver/dns/discovery';
import type { EndpointRecord, NetworkRecord } from '../../driver/model/types';
import type { NetworkLookup } from '../../driver/network/network-table';

const SB = '/var/run/docker/netns/abc123';
const fakeSocket = (): unknown => Object.assign(new EventEmitter(), { close: () => undefined, send: () => undefined });

function setup() {
  const red = { id: 'net-red', name: 'red', overlay: { key: 'ov-red' } } as unknown as NetworkRecord;
  const blue = { id: 'net-blue', name: 'blue', overlay: { key: 'ov-blue' } } as unknown as NetworkRecord;
  const bridge = { id: 'net-br', name: 'br' } as unknown as NetworkRecord;
  const eps = new Map<string, EndpointRecord[]>([['net-red', []], ['net-blue', []], ['net-br', []]]);
  const records = [red, blue, bridge];
  const networks: NetworkLookup = {
    list: () => records.map((record) => ({ record, endpoints: eps.get(record.id) ?? [] })),
    get: (id) => records.find((r) => r.id === id),
    byOverlay: (k) => records.find((r) => r.overlay?.key === k),
    withNetworkLock: (_id, fn) => fn(),
  };
  const calls: string[] = [];
  const state = new Map<string, 'ready' | 'pending' | 'missing'>([[SB, 'pending']]);
  let ruleOk = true;
  const kernel: ResolverKernel = {
    open: async (key) => (calls.push(`open ${key}`), { udp: fakeSocket(), tcp: fakeSocket(), udpPort: 40001, tcpPort: 40002 }) as never,
    install: async (key, u, t) => void calls.push(`install ${key} ${u} ${t}`),
    remove: async (key) => void calls.push(`remove ${key}`),
    check: async () => ruleOk,
    state: (key) => state.get(key) ?? 'missing',
  };
  const container = { Id: 'abcdef0123456789', Name: '/weba', NetworkSettings: { Networks: { red: { EndpointID: 'ep-a', Aliases: ['api'] } } } };
  let dockerShows = false;
  const docker = {
    getNetwork: () => ({ inspect: async () => ({ Containers: dockerShows ? { [container.Id]: { EndpointID: 'ep-a' } } : {} }) }),
    getContainer: () => ({ inspect: async () => container }),
  } as unknown as Dockerode;
  const remote = new Map<string, Map<string, RemoteEndpoint>>([
    ['ov-red', new Map([
      ['hB/ep-b', { overlay: 'ov-red', host: 'hB', endpointId: 'ep-b', mac: '', vtep: '', ip: '198.18.10.2', names: ['webb', 'api'] }],
      ['hC/ep-c', { overlay: 'ov-red', host: 'hC', endpointId: 'ep-c', mac: '', vtep: '', ip: '198.18.10.3', names: ['webc'] }],
      ['hD/ep-d', { overlay: 'ov-red', host: 'hD', endpointId: 'ep-d', mac: '', vtep: '', ip: '198.18.10.4', names: ['webd'] }],
    ])],
  ]);
  const registered = new Set(['hB', 'hD']);
  const retiring = new Set(['ep-d']);
  const d = new ServiceDiscovery({
    networks,
    cluster: { hostId: 'hA', remote, hostRegistered: (h) => registered.has(h), retiring: (ep) => retiring.has(ep.endpointId) },
    docker: async () => docker,
    setNames: async (networkId, endpointId, sandboxKey, names) => {
      const ep = eps.get(networkId)?.find((e) => e.id === endpointId);
      if (!ep || ep.sandboxKey !== sandboxKey) return false;
      ep.dnsNames = names;
      calls.push(`names ${endpointId} ${names.join(',')}`);
      return true;
    },
    log: silentLogger(),
    kernel,
    queue: { concurrency: 2, attempts: 20, baseMs: 1, maxMs: 5 },
  });
  const epA = { id: 'ep-a', networkId: 'net-red', sandboxKey: SB, address: '198.18.10.9/24' } as unknown as EndpointRecord;
  eps.get('net-red')?.push(epA);
  return { d, red, blue, bridge, eps, calls, state, epA, setRuleOk: (v: boolean) => (ruleOk = v), showInDocker: () => (dockerShows = true) };
}

test('a container on a bridge network only is never touched', async () => {
  const s = setup();
  const ep = { id: 'ep-br', networkId: 'net-br', sandboxKey: SB } as unknown as EndpointRecord;
  s.d.joined(s.bridge, ep, SB);
  await s.d.idle();
  expect(s.calls).toEqual([]);
  expect(s.d.attached).toEqual([]);
});

test('after Join: names learned once Docker shows the endpoint, the resolver attached once the namespace exists', async () => {
  const s = setup();
  s.d.joined(s.red, s.epA, SB);
  setTimeout(() => s.state.set(SB, 'ready'), 10);
  setTimeout(() => s.showInDocker(), 10);
  await s.d.idle();
  expect(s.calls).toEqual(expect.arrayContaining([`open ${SB}`, `install ${SB} 40001 40002`, 'names ep-a abcdef012345,api,weba']));
  expect(s.calls.filter((c) => c.startsWith('open'))).toHaveLength(1);
  expect(s.d.attached).toEqual([SB]);
});

test('names: local ones are Docker\'s, remote ones of registered hosts only, not retiring ones', async () => {
  const s = setup();
  s.epA.dnsNames = ['weba', 'api'];
  s.d.joined(s.red, s.epA, SB);
  expect(s.d.names.lookup(['ov-red'], 'webb')).toEqual({ kind: 'remote', v4: ['198.18.10.2'], v6: [] });
  expect(s.d.names.lookup(['ov-red'], 'api')).toEqual({ kind: 'local' });
  expect(s.d.names.lookup(['ov-red'], 'weba')).toEqual({ kind: 'local' });
  expect(s.d.names.lookup(['ov-red'], 'webc')).toBeUndefined(); // hC is not registered
  expect(s.d.names.lookup(['ov-red'], 'webd')).toBeUndefined(); // its key left etcd
  expect(s.d.names.lookup(['ov-blue'], 'webb')).toBeUndefined();
  s.d.left(s.red, s.epA, SB);
  await s.d.idle();
});

test('Leave detaches; a graceful stop removes every rule', async () => {
  const s = setup();
  s.state.set(SB, 'ready');
  s.epA.dnsNames = ['weba'];
  s.d.joined(s.red, s.epA, SB);
  await s.d.idle();
  expect(s.d.attached).toEqual([SB]);
  s.d.left(s.red, s.epA, SB);
  await s.d.idle();
  expect(s.d.attached).toEqual([]);
  expect(s.calls.at(-1)).toBe(`remove ${SB}`);
  s.d.joined(s.red, s.epA, SB);
  await s.d.idle();
  await s.d.stop();
  expect(s.calls.at(-1)).toBe(`remove ${SB}`);
  expect(s.d.attached).toEqual([]);
});

test('repair: a missing rule is installed again; a joined endpoint without resolver is attached again', async () => {
  const s = setup();
  s.state.set(SB, 'ready');
  s.epA.dnsNames = ['weba'];
  s.d.joined(s.red, s.epA, SB);
  await s.d.idle();
  s.setRuleOk(false);
  expect(await s.d.repair()).toEqual({ 'dns-rule': 1 });
  await s.d.idle();
  expect(s.calls.filter((c) => c.startsWith('install'))).toHaveLength(2);
  s.setRuleOk(true);
  expect(await s.d.repair()).toEqual({});
  await s.d.stop();
  const t = setup();
  t.state.set(SB, 'ready');
  t.epA.dnsNames = ['weba'];
  expect(await t.d.repair()).toEqual({ 'dns-attach': 1 });
  await t.d.idle();
  expect(t.d.attached).toEqual([SB]);
  await t.d.stop();
});
