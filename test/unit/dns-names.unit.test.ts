/** Service discovery, pure parts: the name table, the answers (dns-packet on the wire), names from Docker's inspect, the work queue. */
import * as packet from 'dns-packet';
import { silentLogger } from '../../lib/logger';
import { ANSWER_TTL_S, decide } from '../../driver/dns/answer';
import { namesOf } from '../../driver/dns/learn';
import { buildIndex, NamedEndpoint, NameTable, normaliseName } from '../../driver/dns/name-table';
import { GiveUp, WorkQueue } from '../../driver/dns/work-queue';

const remote = (overlay: string, names: string[], ip: string, host = 'hB', ip6?: string): NamedEndpoint => ({ overlay, names, ip, host, local: false, ...(ip6 ? { ip6 } : {}) });
const local = (overlay: string, names: string[], ip: string): NamedEndpoint => ({ overlay, names, ip, host: 'hA', local: true });

const query = (name: string, type: packet.RecordType = 'A', id = 4242, extra: Partial<packet.Packet> = {}): Buffer =>
  packet.encode({ id, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra });

describe('name table', () => {
  test('names are per overlay, case-insensitive, without the trailing dot', () => {
    const t = new NameTable(() => [remote('red', ['webb'], '198.18.100.2'), remote('blue', ['webx'], '198.18.101.2')]);
    expect(t.lookup(['red'], 'WebB.')).toEqual({ kind: 'remote', v4: ['198.18.100.2'], v6: [] });
    expect(t.lookup(['blue'], 'webb')).toBeUndefined();
    expect(t.lookup(['red', 'blue'], 'webx')).toEqual({ kind: 'remote', v4: ['198.18.101.2'], v6: [] });
    expect(t.lookup(['red'], 'nothing')).toBeUndefined();
  });

  test('several endpoints with one alias give every address, rotating (round robin)', () => {
    const t = new NameTable(() => [remote('red', ['webb', 'api'], '198.18.100.2'), remote('red', ['webc', 'API'], '198.18.100.3', 'hC')]);
    const seen = [0, 1, 2, 3].map(() => (t.lookup(['red'], 'api') as { v4: string[] }).v4);
    for (const v4 of seen) expect([...v4].sort()).toEqual(['198.18.100.2', '198.18.100.3']);
    expect(new Set(seen.map((v) => v[0])).size).toBe(2);
  });

  test('a name that exists locally is Docker\'s (local wins; no remote address is added)', () => {
    const t = new NameTable(() => [remote('red', ['api'], '198.18.100.2'), local('red', ['api', 'weba'], '198.18.100.9')]);
    expect(t.lookup(['red'], 'api')).toEqual({ kind: 'local' });
    expect(t.lookup(['red'], 'weba')).toEqual({ kind: 'local' });
  });

  test('AAAA addresses of dual-stack endpoints; bad names from etcd are ignored', () => {
    const idx = buildIndex([remote('red', ['web6', '', 'bad name', 42 as unknown as string, 'x'.repeat(300)], '198.18.100.2', 'hB', 'fd5c::2')]);
    expect([...(idx.get('red')?.keys() ?? [])]).toEqual(['web6']);
    expect(idx.get('red')?.get('web6')).toMatchObject({ v4: ['198.18.100.2'], v6: ['fd5c::2'], hosts: ['hB'] });
    expect(normaliseName('Svc.Blue.')).toBe('svc.blue');
    expect(normaliseName('-x')).toBeUndefined();
  });

  test('the index is rebuilt when marked changed, and at most maxAge later on its own', () => {
    let eps = [remote('red', ['webb'], '198.18.100.2')];
    let now = 0;
    const t = new NameTable(() => eps, 1_000, () => now);
    expect(t.lookup(['red'], 'webb')).toBeDefined();
    eps = [];
    expect(t.lookup(['red'], 'webb')).toBeDefined(); // cached
    now = 1_000;
    expect(t.lookup(['red'], 'webb')).toBeUndefined();
    eps = [remote('red', ['webb'], '198.18.100.2')];
    t.changed();
    expect(t.lookup(['red'], 'webb')).toBeDefined();
    expect(t.list('red')).toEqual([expect.objectContaining({ overlay: 'red', name: 'webb', local: false, v4: ['198.18.100.2'] })]);
  });
});

describe('answers', () => {
  const table = new NameTable(() => [remote('red', ['webb'], '198.18.100.2', 'hB', 'fd5c::2'), remote('red', ['only4'], '198.18.100.4'), local('red', ['weba'], '198.18.100.9')]);
  const on = (m: Buffer) => decide(m, (n) => table.lookup(['red'], n));

  test('a remote name: A with TTL 5, the question echoed, the id kept, RD copied, RA set', () => {
    const d = on(query('WEBB', 'A', 777));
    expect(d.kind).toBe('answer');
    if (d.kind !== 'answer') return;
    const r = packet.decode(d.reply);
    expect(r).toMatchObject({ id: 777, type: 'response', questions: [{ name: 'WEBB', type: 'A' }] });
    expect(r.answers).toEqual([expect.objectContaining({ name: 'WEBB', type: 'A', ttl: ANSWER_TTL_S, data: '198.18.100.2' })]);
    expect((r.flags ?? 0) & packet.RECURSION_DESIRED).toBeTruthy();
    expect((r.flags ?? 0) & packet.RECURSION_AVAILABLE).toBeTruthy();
    expect((r as { rcode?: string }).rcode).toBe('NOERROR');
  });

  test('AAAA of a dual-stack name; AAAA of a v4-only name is NODATA (not NXDOMAIN)', () => {
    const d6 = on(query('webb', 'AAAA'));
    expect(d6.kind === 'answer' && packet.decode(d6.reply).answers).toEqual([expect.objectContaining({ type: 'AAAA', data: 'fd5c::2' })]);
    const nodata = on(query('only4', 'AAAA'));
    expect(nodata.kind).toBe('answer');
    if (nodata.kind === 'answer') {
      expect(packet.decode(nodata.reply).answers).toEqual([]);
      expect((packet.decode(nodata.reply) as { rcode?: string }).rcode).toBe('NOERROR');
    }
  });

  test('local names, unknown names, other types and several questions go to Docker', () => {
    expect(on(query('weba')).kind).toBe('relay');
    expect(on(query('example.outside.test')).kind).toBe('relay');
    expect(on(query('webb', 'MX')).kind).toBe('relay');
    expect(on(packet.encode({ id: 1, type: 'query', questions: [{ name: 'webb', type: 'A' }, { name: 'webb', type: 'AAAA' }] })).kind).toBe('relay');
    expect(on(Buffer.from('not a dns message at all')).kind).toBe('relay');
  });

  test('runts and responses are dropped', () => {
    expect(on(Buffer.alloc(5)).kind).toBe('drop');
    expect(on(packet.encode({ id: 1, type: 'response', questions: [{ name: 'webb', type: 'A' }] })).kind).toBe('drop');
  });
});

describe('names from docker inspect', () => {
  const c = {
    Id: 'abcdef0123456789abcdef',
    Name: '/WebB',
    NetworkSettings: {
      Networks: {
        red: { EndpointID: 'ep-red', Aliases: ['api', 'abcdef012345'], DNSNames: ['WebB', 'api', 'abcdef012345'] },
        blue: { EndpointID: 'ep-blue', Aliases: ['only-on-blue'], DNSNames: null },
      },
    },
  };
  test('container name, aliases of that network, DNSNames, short id; lowercased, unique, sorted', () => {
    expect(namesOf(c, 'ep-red')).toEqual(['abcdef012345', 'api', 'webb']);
    expect(namesOf(c, 'ep-blue')).toEqual(['abcdef012345', 'only-on-blue', 'webb']);
    expect(namesOf(c, 'ep-unknown')).toBeUndefined();
  });
});

describe('work queue', () => {
  const log = silentLogger();
  test('at most `concurrency` jobs run; a newer job for a key replaces a waiting one', async () => {
    const q = new WorkQueue(log, { concurrency: 2, attempts: 1, baseMs: 1, maxMs: 1 });
    let running = 0;
    let peak = 0;
    const ran: string[] = [];
    const job = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      ran.push(name);
      running--;
    };
    for (let i = 0; i < 6; i++) q.push(`k${i}`, 'job', job(`k${i}`));
    q.push('k5', 'job', job('k5-new'));
    await q.idle();
    expect(peak).toBe(2);
    expect(ran.sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5-new']);
  });

  test('failures are retried with backoff up to `attempts`; GiveUp stops at once', async () => {
    const q = new WorkQueue(log, { concurrency: 2, attempts: 3, baseMs: 1, maxMs: 4 });
    let tries = 0;
    let gaveUp = 0;
    q.push('flaky', 'flaky', async () => {
      if (++tries < 3) throw new Error('not yet');
    });
    q.push('gone', 'gone', async () => {
      gaveUp++;
      throw new GiveUp('container gone');
    });
    await q.idle();
    expect(tries).toBe(3);
    expect(gaveUp).toBe(1);
  });

  test('stop drops waiting work', async () => {
    const q = new WorkQueue(log, { concurrency: 1, attempts: 1, baseMs: 1, maxMs: 1 });
    const ran: string[] = [];
    q.push('a', 'a', async () => void (await new Promise((r) => setTimeout(r, 5)), ran.push('a')));
    q.push('b', 'b', async () => void ran.push('b'));
    q.stop();
    await q.idle();
    expect(ran).toEqual(['a']);
  });
});
