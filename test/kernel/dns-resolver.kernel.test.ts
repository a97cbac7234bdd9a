/**
 * The per-container resolver against real sockets (run inside `unshare --net`, like every
 * kernel test): a stand-in for Docker's resolver on 127.0.0.11:53, the resolver's own UDP
 * socket and TCP listener on 127.0.0.11 with kernel-chosen ports, as loomd holds them inside
 * a container's namespace. Remote names are answered by loom; everything else is relayed to
 * "Docker" byte for byte (only the id swapped and restored), over UDP and TCP.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as packet from 'dns-packet';
import { execFileSync } from 'node:child_process';
import { decide } from '../../driver/dns/answer';
import { NameTable } from '../../driver/dns/name-table';
import { ContainerResolver, QueryResult } from '../../driver/dns/resolver';

const DOCKER = '127.0.0.11';
let docker: dgram.Socket;
const seenByDocker: Buffer[] = [];
let resolver: ContainerResolver;
let udpPort: number;
let tcpPort: number;
const results: QueryResult[] = [];

const bound = (s: dgram.Socket, port: number): Promise<number> => new Promise((r) => s.bind(port, DOCKER, () => r(s.address().port)));

beforeAll(async () => {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  // "Docker": answers every A question with 198.18.254.9 after 20 ms (so relayed queries overlap).
  docker = dgram.createSocket('udp4');
  docker.on('message', (m, r) => {
    seenByDocker.push(m);
    const q = packet.decode(m);
    const reply = packet.encode({ id: q.id, type: 'response', flags: packet.RECURSION_AVAILABLE, questions: q.questions, answers: [{ name: q.questions?.[0]?.name ?? '', type: 'A', class: 'IN', ttl: 600, data: '198.18.254.9' }] });
    setTimeout(() => docker.send(reply, r.port, r.address), 20);
  });
  await bound(docker, 53);
  const udp = dgram.createSocket('udp4');
  udpPort = await bound(udp, 0);
  const tcp = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => tcp.listen(0, DOCKER, () => r()));
  tcpPort = (tcp.address() as net.AddressInfo).port;
  const table = new NameTable(() => [{ overlay: 'red', names: ['webb'], ip: '198.18.100.2', host: 'hB', local: false }]);
  resolver = new ContainerResolver(udp, tcp, (m) => decide(m, (n) => table.lookup(['red'], n)), (r) => results.push(r));
});
afterAll(() => {
  resolver?.close();
  docker?.close();
});

const query = (name: string, id: number): Buffer => packet.encode({ id, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });

function askUdp(msg: Buffer): Promise<Buffer> {
  const s = dgram.createSocket('udp4');
  return new Promise<Buffer>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reply')), 3_000);
    s.on('message', (m) => {
      clearTimeout(t);
      resolve(m);
    });
    s.send(msg, udpPort, DOCKER);
  }).finally(() => s.close());
}

function askTcp(msg: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const c = net.connect(tcpPort, DOCKER);
    const t = setTimeout(() => reject(new Error('no reply')), 3_000);
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        c.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    c.on('error', reject);
    c.write(packet.streamEncode({ ...packet.decode(msg) }));
  });
}

test('a remote name is answered by loom over UDP and TCP (Docker never sees it)', async () => {
  for (const reply of [await askUdp(query('WEBB', 11)), await askTcp(query('webb', 12))]) {
    const r = packet.decode(reply);
    expect(r.answers).toEqual([expect.objectContaining({ type: 'A', data: '198.18.100.2', ttl: 5 })]);
  }
  expect(seenByDocker).toEqual([]);
  expect(results.filter((r) => r === 'answered')).toHaveLength(2);
});

test('other names are relayed byte for byte with the id swapped, and the reply gets the client\'s id back', async () => {
  const q = query('www.outside.test', 0x4242);
  const reply = await askUdp(q);
  const sent = seenByDocker.at(-1) as Buffer;
  expect(sent.subarray(2)).toEqual(q.subarray(2));
  expect(sent.readUInt16BE(0)).not.toBe(0x4242);
  expect(packet.decode(reply)).toMatchObject({ id: 0x4242, answers: [expect.objectContaining({ data: '198.18.254.9', ttl: 600 })] });
  const overTcp = packet.decode(await askTcp(query('www.outside.test', 7)));
  expect(overTcp).toMatchObject({ id: 7, answers: [expect.objectContaining({ data: '198.18.254.9' })] });
});

test('overlapping relayed queries with the same client id each get their own reply', async () => {
  const names = ['a.outside.test', 'b.outside.test', 'c.outside.test', 'd.outside.test'];
  const replies = await Promise.all(names.map((n) => askUdp(query(n, 99))));
  expect(replies.map((r) => packet.decode(r).questions?.[0]?.name)).toEqual(names);
  expect(replies.every((r) => packet.decode(r).id === 99)).toBe(true);
});
