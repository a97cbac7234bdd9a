/**
 * The namespace side of a container's resolver, for real (inside `unshare --net`, like every
 * kernel test; this namespace plays the container's): a SandboxKey-shaped file bound to the
 * namespace, the helper (dist/, `npm run build` first) binding the sockets on 127.0.0.11 and
 * handing them over, the steering table DNATing queries to 127.0.0.11:53 to them, a stand-in
 * for Docker's resolver on 127.0.0.11:53 receiving what is relayed, and the table's removal.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as packet from 'dns-packet';
import { execFileSync } from 'node:child_process';
import { decide } from '../../driver/dns/answer';
import { NameTable } from '../../driver/dns/name-table';
import { ContainerResolver } from '../../driver/dns/resolver';
import { hasResolverRule, installResolverRule, openResolverSockets, removeResolverRule, sandboxState } from '../../driver/kernel/dns-sockets';

const DIR = `/tmp/loom-dns-kernel-${process.pid}`;
const KEY = path.join(DIR, 'netns', 'ctr1');
let docker: dgram.Socket;
const seenByDocker: string[] = [];
let resolver: ContainerResolver | undefined;

beforeAll(async () => {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  fs.mkdirSync(path.dirname(KEY), { recursive: true });
  fs.writeFileSync(KEY, '');
  expect(sandboxState(KEY)).toBe('pending');
  execFileSync('mount', ['--bind', `/proc/${process.pid}/ns/net`, KEY]);
  docker = dgram.createSocket('udp4');
  docker.on('message', (m, r) => {
    const q = packet.decode(m);
    seenByDocker.push(q.questions?.[0]?.name ?? '');
    docker.send(packet.encode({ id: q.id, type: 'response', questions: q.questions, answers: [{ name: q.questions?.[0]?.name ?? '', type: 'A', class: 'IN', ttl: 600, data: '198.18.254.9' }] }), r.port, r.address);
  });
  await new Promise<void>((r) => docker.bind(53, '127.0.0.11', () => r()));
});
afterAll(() => {
  resolver?.close();
  docker?.close();
  try {
    execFileSync('umount', [KEY]);
  } finally {
    fs.rmSync(DIR, { recursive: true, force: true });
  }
});

function ask(name: string): Promise<packet.DecodedPacket> {
  const s = dgram.createSocket('udp4');
  return new Promise<packet.DecodedPacket>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no reply for ${name}`)), 3_000);
    s.on('message', (m) => {
      clearTimeout(t);
      resolve(packet.decode(m));
    });
    s.send(packet.encode({ id: 5, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }), 53, '127.0.0.11');
  }).finally(() => s.close());
}

test('helper + steering table: queries to 127.0.0.11:53 reach loom, which answers its names and relays the rest; removal gives Docker its queries back', async () => {
  expect(sandboxState(KEY)).toBe('ready');
  expect(sandboxState(path.join(DIR, 'netns', 'gone'))).toBe('missing');
  const s = await openResolverSockets(KEY);
  expect(s.udpPort).toBeGreaterThan(0);
  const table = new NameTable(() => [{ overlay: 'red', names: ['webb'], ip: '198.18.100.2', host: 'hB', local: false }]);
  resolver = new ContainerResolver(s.udp, s.tcp, (m) => decide(m, (n) => table.lookup(['red'], n)), () => undefined);
  await installResolverRule(KEY, s.udpPort, s.tcpPort);
  await installResolverRule(KEY, s.udpPort, s.tcpPort); // replaced whole: idempotent
  expect(await hasResolverRule(KEY, s.udpPort, s.tcpPort)).toBe(true);
  expect(await hasResolverRule(KEY, s.udpPort + 1, s.tcpPort)).toBe(false);

  expect((await ask('webb')).answers).toEqual([expect.objectContaining({ data: '198.18.100.2', ttl: 5 })]);
  expect(seenByDocker).toEqual([]);
  expect((await ask('www.outside.test')).answers).toEqual([expect.objectContaining({ data: '198.18.254.9', ttl: 600 })]);
  expect(seenByDocker).toEqual(['www.outside.test']);

  await removeResolverRule(KEY);
  await removeResolverRule(KEY); // absent is fine
  expect(await hasResolverRule(KEY, s.udpPort, s.tcpPort)).toBe(false);
  expect((await ask('webb')).answers).toEqual([expect.objectContaining({ data: '198.18.254.9' })]); // Docker's answer now
  expect(seenByDocker).toEqual(['www.outside.test', 'webb']);
});
