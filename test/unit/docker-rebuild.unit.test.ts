/** rebuildEntries: loom's records from Docker's inspect data (shapes as Docker 20.10 returns them). */
import type Dockerode from 'dockerode';
import { rebuildEntries } from '../../driver/recovery/docker-rebuild';

const NET = 'a'.repeat(64);
const EP = 'e'.repeat(64);
const CTR = 'c'.repeat(64);

const network = (over: Record<string, unknown> = {}) =>
  ({
    Name: 'n1',
    Id: NET,
    Created: '2026-12-05T10:00:00Z',
    Scope: 'local',
    Driver: 'loom',
    EnableIPv6: false,
    Internal: false,
    IPAM: { Driver: 'loom', Options: {}, Config: [{ Subnet: '198.18.30.0/24', AuxiliaryAddresses: { x: '198.18.30.200' } }] },
    Options: { 'com.docker.network.driver.mtu': '1400' },
    Containers: { [CTR]: { Name: 'c1', EndpointID: EP, MacAddress: '02:11:22:33:44:55', IPv4Address: '198.18.30.7/24', IPv6Address: '' } },
    ...over,
  }) as unknown as Dockerode.NetworkInspectInfo;

const container = (ipamConfig?: Record<string, string>) =>
  new Map([
    [
      CTR,
      {
        Id: CTR,
        Created: '2026-12-05T10:01:00Z',
        State: { Running: true },
        Config: {},
        NetworkSettings: {
          SandboxKey: '/var/run/docker/netns/abc',
          Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] },
          Networks: { n1: { NetworkID: NET, EndpointID: EP, Gateway: '198.18.30.1', IPAMConfig: ipamConfig, DriverOpts: { 'loom.egress_rate': '10mbit' } } },
        },
      } as unknown as Dockerode.ContainerInspectInfo,
    ],
  ]);

const byKey = (entries: Array<[string, unknown]>) => Object.fromEntries(entries) as Record<string, any>;

test('a bridge network with loom IPAM: network, pool, allocations and the endpoint', () => {
  const r = rebuildEntries([network() as never], container(), 'loom');
  const e = byKey(r.entries);
  expect(r).toMatchObject({ networks: 1, endpoints: 1, pools: 1, allocations: 3, skipped: [] });
  expect(e[`net/${NET}`]).toMatchObject({ id: NET, bridge: `lm-${'a'.repeat(12)}`, mtu: 1400, ipv4: [{ pool: '198.18.30.0/24', gateway: '198.18.30.1/24', aux: { x: '198.18.30.200/24' } }] });
  const pool = 'LoomLocal/198.18.30.0/24';
  expect(e[`ipam/pool/${pool}`]).toMatchObject({ id: pool, pool: '198.18.30.0/24', cursor: String((198n << 24n) + (18n << 16n) + (30n << 8n) + 7n) });
  expect(e[`ipam/addr/${pool}|198.18.30.1`]).toMatchObject({ kind: 'gateway' });
  expect(e[`ipam/addr/${pool}|198.18.30.200`]).toMatchObject({ kind: 'explicit' });
  expect(e[`ipam/addr/${pool}|198.18.30.7`]).toMatchObject({ kind: 'dynamic' });
  expect(e[`ep/${NET}/${EP}`]).toMatchObject({
    address: '198.18.30.7/24',
    mac: '02:11:22:33:44:55',
    hostIf: `lv${'e'.repeat(12)}`,
    sandboxKey: '/var/run/docker/netns/abc',
    options: { 'loom.egress_rate': '10mbit' },
    ports: [{ proto: 'tcp', family: 4, hostIp: '0.0.0.0', hostPort: 8080, containerIp: '198.18.30.7', containerPort: 80 }],
  });
});

test('--ip makes the allocation explicit; the gateway comes from the kernel when no container names it', () => {
  const r = rebuildEntries([network({ Containers: {} }) as never], new Map(), 'loom', (bridge) => (bridge === `lm-${'a'.repeat(12)}` ? ['198.18.30.1/24'] : []));
  expect(byKey(r.entries)[`net/${NET}`].ipv4[0].gateway).toBe('198.18.30.1/24');
  const r2 = rebuildEntries([network() as never], container({ IPv4Address: '198.18.30.7' }), 'loom');
  expect(byKey(r2.entries)['ipam/addr/LoomLocal/198.18.30.0/24|198.18.30.7'].kind).toBe('explicit');
});

test('other drivers are ignored, overlays reported as not rebuilt, a named bridge recorded as adopted', () => {
  const r = rebuildEntries(
    [
      network({ Driver: 'bridge' }) as never,
      network({ Id: 'b'.repeat(64), Name: 'ov', Options: { 'loom.mode': 'overlay' } }) as never,
      network({ Id: 'd'.repeat(64), Name: 'named', Options: { 'com.docker.network.bridge.name': 'br-mine' }, IPAM: { Driver: 'default', Config: [{ Subnet: '198.18.31.0/24', Gateway: '198.18.31.1' }] }, Containers: {} }) as never,
    ],
    new Map(),
    'loom',
  );
  expect(r.networks).toBe(1);
  expect(r.pools).toBe(0); // Docker's own IPAM served it: loom holds no pool
  expect(r.skipped).toEqual([expect.stringMatching(/network ov .*an overlay/)]);
  expect(byKey(r.entries)[`net/${'d'.repeat(64)}`]).toMatchObject({ bridge: 'br-mine', adoptedBridge: true });
});

test('loom.gateway=docker: the record keeps it, and the ports Docker shows (docker_gwbridge\'s) never become loom\'s', () => {
  const r = rebuildEntries([network({ Options: { 'loom.gateway': 'docker' } }) as never], container(), 'loom');
  const e = byKey(r.entries);
  expect(e[`net/${NET}`]).toMatchObject({ gatewayService: 'docker', internal: false });
  expect(e[`ep/${NET}/${EP}`]).toMatchObject({ address: '198.18.30.7/24' });
  expect(e[`ep/${NET}/${EP}`].ports).toBeUndefined();
});
