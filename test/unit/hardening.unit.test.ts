/**
 * Small hardening rules: SandboxKey shapes, the netlink request deadline, risky settings that
 * are warned about, log lines without duplicate keys, log lines lost counted, and the state
 * directory's permissions.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type { RtNetlinkSocket } from 'netlink';
import { parseConfig, isLoopbackListener } from '../../driver/config';
import { prepareStateDir } from '../../driver/startup/state';
import { ensureHostMeta } from '../../driver/store/host-meta';
import { MemoryKv } from '../../lib/kv';
import { sandboxKeyProblem } from '../../driver/kernel/netns-file';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';
import { boundedDestination, createLogger, logLosses, silentLogger } from '../../lib/logger';
import { checkEndpointAddress } from '../../driver/model/records';
import { hostRange, parseIp, parsePrefix, unusableSubnet } from '../../lib/prefix';

describe('SandboxKey shapes', () => {
  test.each([
    '/var/run/docker/netns/1c5be8eb1e73',
    '/run/docker/netns/default',
    '/tmp/loom-e2e/ab12cd/exec/netns/lb_x1y2',
    '',
  ])('accepted: %j', (p) => expect(sandboxKeyProblem(p)).toBeUndefined());

  test.each([
    ['netns/x', /absolute/],
    ['/var/run/docker/netns/../netns/x', /normalised/],
    ['/var/run/docker//netns/x', /normalised/],
    ['/var/run/docker/netns/', /normalised/],
    ['/x', /netns directory/],
    ['/var/run/docker/other/x', /netns directory/],
    ['/var/run/docker/netns/x\n', /control/],
    ['/var/run/docker/netns/a b', /file name/],
  ])('refused: %j', (p, why) => expect(sandboxKeyProblem(p)).toMatch(why));
});

describe('netlink request deadline', () => {
  test('a request the kernel never answers fails after the deadline; the next one goes through on a new socket', async () => {
    const opened: string[] = [];
    const closed: string[] = [];
    const fake = (name: string, answer: () => Promise<unknown[]>): RtNetlinkSocket =>
      ({ getLinks: answer, socket: { socket: { close: () => closed.push(name) } } }) as unknown as RtNetlinkSocket;
    const sockets = [fake('lost', () => new Promise(() => undefined)), fake('fresh', async () => [])];
    const kernel = new NetlinkKernel(undefined, {
      timeoutMs: 50,
      open: () => {
        const s = sockets.shift() as RtNetlinkSocket;
        opened.push(s === undefined ? 'none' : 'x');
        return s;
      },
    });
    const errnos: string[] = [];
    kernel.onError = (e) => errnos.push(e);
    const err = (await kernel.listLinks().catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/list links: netlink request got no answer within 50 ms/);
    expect(errnos).toEqual(['ETIMEDOUT']);
    expect(closed).toEqual(['lost']);
    await expect(kernel.listLinks()).resolves.toEqual([]);
    expect(opened).toHaveLength(2);
  });
});

describe('risky settings are accepted with a warning', () => {
  const warnings = (argv: string[]): string[] => {
    const r = parseConfig(argv, {});
    if (r.kind !== 'run') throw new Error('expected run');
    return r.config.warnings;
  };
  test('defaults warn about nothing', () => expect(warnings([])).toEqual([]));
  test('a socket others may use', () => expect(warnings(['--socket-mode', '666']).join()).toMatch(/other than root/));
  test('metrics on every address', () => {
    expect(warnings(['--metrics', '0.0.0.0:9323']).join()).toMatch(/without authentication/);
    expect(warnings(['--metrics', '[::]:9323']).join()).toMatch(/without authentication/);
    expect(warnings(['--metrics', '127.0.0.1:9323'])).toEqual([]);
    expect(warnings(['--metrics', '/run/loom/metrics.sock'])).toEqual([]);
  });
  test('loopback listeners', () => {
    expect(isLoopbackListener('[::1]:1')).toBe(true);
    expect(isLoopbackListener('localhost:1')).toBe(true);
    expect(isLoopbackListener('198.18.0.1:1')).toBe(false);
  });
});

test('log lines never carry a key twice', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger('info', sink);
  log.info('root');
  log.child({ svc: 'reconcile' }).child({ reqId: 'r1' }).warn({ networkId: 'n' }, 'child');
  expect(lines).toHaveLength(2);
  for (const line of lines) {
    const keys = [...line.matchAll(/"([^"]+)":/g)].map((m) => m[1]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(JSON.parse(line).name).toBe('loomd');
  }
  expect(JSON.parse(lines[1] as string).svc).toBe('reconcile');
});

test('log lines the writer cannot deliver are counted: failed writes (ENOSPC), tried again on a timer, then lines dropped past the backlog', async () => {
  const fd = fs.openSync('/dev/full', 'w'); // every write fails with ENOSPC
  const before = logLosses();
  const dest = boundedDestination(fd, 4096, 20);
  const log = createLogger('info', dest);
  try {
    for (let i = 0; i < 200; i++) log.info({ i, pad: 'x'.repeat(100) }, 'a line nobody will read');
    const deadline = Date.now() + 5_000;
    while (logLosses().writeErrors === before.writeErrors && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const after = logLosses();
    expect(after.writeErrors).toBeGreaterThan(before.writeErrors);
    expect(after.lastWriteError).toBe('ENOSPC');
    // At most 4 KiB wait: of 200 lines of about 170 bytes, most are dropped, one line per drop.
    expect(after.droppedLines - before.droppedLines).toBeGreaterThan(150);
    expect(after.droppedLines - before.droppedLines).toBeLessThan(200);
    expect(after.droppedBytes - before.droppedBytes).toBeGreaterThan(150 * 100);
    // No line is written any more, yet the writer keeps trying (it would resume once the disk has room).
    const errors = logLosses().writeErrors;
    const until = Date.now() + 5_000;
    while (logLosses().writeErrors < errors + 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(logLosses().writeErrors).toBeGreaterThanOrEqual(errors + 3);
  } finally {
    (dest as unknown as { destroy(): void }).destroy(); // closes the fd
  }
});

test('one failed write of the log counts as one write error (pino hands the first error on a second time)', async () => {
  const fd = fs.openSync('/dev/full', 'w');
  const before = logLosses().writeErrors;
  const dest = boundedDestination(fd, 4096, 60_000); // no retry within the test
  try {
    createLogger('info', dest).info('a line nobody will read');
    const deadline = Date.now() + 5_000;
    while (logLosses().writeErrors === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(logLosses().writeErrors - before).toBe(1);
  } finally {
    (dest as unknown as { destroy(): void }).destroy(); // closes the fd
  }
});

describe('state directory', () => {
  let base: string;
  beforeEach(() => (base = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-statedir-'))));
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  test('created root-only when missing', () => {
    const dir = path.join(base, 'a', 'b');
    prepareStateDir(dir, silentLogger());
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  });
  test('an existing directory is never chmodded; one others can write is refused', () => {
    const shared = path.join(base, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    expect(() => prepareStateDir(shared, silentLogger())).toThrow(/writable by other users/);
    expect(fs.statSync(shared).mode & 0o7777).toBe(0o1777);
    const readable = path.join(base, 'readable');
    fs.mkdirSync(readable);
    fs.chmodSync(readable, 0o755);
    prepareStateDir(readable, silentLogger());
    expect(fs.statSync(readable).mode & 0o777).toBe(0o755);
  });
  test('a file is refused', () => {
    const file = path.join(base, 'file');
    fs.writeFileSync(file, '');
    expect(() => prepareStateDir(file, silentLogger())).toThrow(/not a directory/);
  });
});

describe('addresses a container may not hold, subnets a network may not use', () => {
  const p = (t: string) => parsePrefix(t);
  test('host range', () => {
    expect(hostRange(p('198.18.1.0/24'))).toEqual({ first: parseIp('198.18.1.1').value, last: parseIp('198.18.1.254').value });
    expect(hostRange(p('198.18.1.0/31'))).toEqual({ first: parseIp('198.18.1.0').value, last: parseIp('198.18.1.1').value });
    expect(hostRange(p('fd00:1::/64')).first).toBe(parseIp('fd00:1::1').value);
  });
  test.each(['0.0.0.0/0', '::/0', '127.0.0.0/24', '0.0.0.0/16', '224.1.0.0/16', '255.255.255.0/24', '::1/128', 'ff02::/16', '120.0.0.0/5'])('refused: %s', (t) =>
    expect(unusableSubnet(p(t))).toBeDefined(),
  );
  test.each(['198.18.0.0/15', '10.0.0.0/8', '172.16.0.0/12', 'fd00:1::/64', '2001:db8::/32'])('accepted: %s', (t) => expect(unusableSubnet(p(t))).toBeUndefined());
  test('an endpoint address that is the network or broadcast address is refused', () => {
    const pools = [{ pool: '198.18.1.0/24', aux: {} }];
    expect(() => checkEndpointAddress('198.18.1.0/24', pools, 4)).toThrow(/network address/);
    expect(() => checkEndpointAddress('198.18.1.255/24', pools, 4)).toThrow(/broadcast address/);
    expect(checkEndpointAddress('198.18.1.7/24', pools, 4)).toBe('198.18.1.7/24');
    expect(() => checkEndpointAddress('fd00:1::/64', [{ pool: 'fd00:1::/64', aux: {} }], 6)).toThrow(/anycast/);
  });
});

test('a rebuilt store keeps this loomd\'s identity (identity.json beside the store)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-identity-'));
  try {
    const file = path.join(dir, 'identity.json');
    const first = await ensureHostMeta(new MemoryKv(), file);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).hostId).toBe(first.hostId);
    const rebuilt = new MemoryKv(); // a store without meta/host
    expect(await ensureHostMeta(rebuilt, file)).toMatchObject({ hostId: first.hostId, ula: first.ula });
    expect(await rebuilt.get('meta/host')).toMatchObject({ hostId: first.hostId });
    // Without the file, a new identity (a new state directory).
    expect((await ensureHostMeta(new MemoryKv())).hostId).not.toBe(first.hostId);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
