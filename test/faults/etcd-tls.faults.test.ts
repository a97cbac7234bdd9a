/**
 * Bad etcd TLS settings against a real loomd and a real TLS etcd (both in a throwaway
 * network namespace, on its loopback): wrong combinations and unreadable files stop loomd
 * at start-up with an error naming the flag and the file; a valid but wrong CA gives a
 * repeated-with-backoff log line carrying the TLS error, bounded attempts and flat
 * memory, while plugin calls keep answering at once; the right CA joins.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOOMD_NODE_FLAGS } from '../../driver/node-flags';
import { killAndWait, pidAlive, run, runOk, sleep, waitFor } from '../helpers/run';
import { REPO } from '../helpers/test-host';
import { pluginCall, unixRequest } from '../helpers/unix-http';

jest.setTimeout(180_000);

const NS = `loomt-tls${randomBytes(2).toString('hex')}`;
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-tls-'));
const FIX = path.join(REPO, 'test', 'fixtures', 'etcd-tls');
const ENDPOINT = 'https://127.0.0.1:23791';
const pids: number[] = [];

function spawnInNs(cmd: string[], log: string): number {
  const out = fs.openSync(path.join(DIR, log), 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${NS}`, '--', ...cmd], { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${cmd[0]}`);
  pids.push(child.pid);
  return child.pid;
}

/** A CA of this test's own and a server certificate for 127.0.0.1 it signed. */
async function serverCerts(): Promise<void> {
  const o = (args: string[]): Promise<string> => runOk('openssl', args);
  await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${DIR}/sca-key.pem`, '-out', `${DIR}/sca.pem`, '-days', '2', '-subj', '/CN=loom-tls-test-ca']);
  await o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${DIR}/server-key.pem`, '-out', `${DIR}/server.csr`, '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(`${DIR}/san.ext`, 'subjectAltName=IP:127.0.0.1\n');
  await o(['x509', '-req', '-in', `${DIR}/server.csr`, '-CA', `${DIR}/sca.pem`, '-CAkey', `${DIR}/sca-key.pem`, '-CAcreateserial', '-out', `${DIR}/server.pem`, '-days', '2', '-extfile', `${DIR}/san.ext`]);
}

function startLoomd(name: string, tls: string[]): { pid: number; log: () => string; socket: string; admin: string } {
  const socket = path.join(DIR, `${name}.sock`);
  const admin = path.join(DIR, `${name}-admin.sock`);
  const log = `${name}.log`;
  const pid = spawnInNs(
    [
      process.execPath, ...LOOMD_NODE_FLAGS, path.join(REPO, 'dist', 'driver', 'main.js'),
      '--socket', socket, '--admin-socket', admin, '--state-dir', path.join(DIR, `${name}-state`), '--docker-host', 'off',
      '--etcd', ENDPOINT, '--advertise-address', '127.0.0.1', '--lease-ttl', '4', '--default-pool', '198.18.128.0/17:24',
      ...tls,
    ],
    log,
  );
  return { pid, socket, admin, log: () => fs.readFileSync(path.join(DIR, log), 'utf8') };
}

async function exited(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (pidAlive(pid) && Date.now() < end) await sleep(50);
  return !pidAlive(pid);
}

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

beforeAll(async () => {
  await runOk('ip', ['netns', 'add', NS]);
  await runOk('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  await serverCerts();
  spawnInNs(
    [
      'etcd', '--name', 't1', '--data-dir', path.join(DIR, 'etcd'),
      '--listen-client-urls', ENDPOINT, '--advertise-client-urls', ENDPOINT,
      '--listen-peer-urls', 'http://127.0.0.1:23801', '--initial-advertise-peer-urls', 'http://127.0.0.1:23801',
      '--initial-cluster', 't1=http://127.0.0.1:23801',
      '--cert-file', `${DIR}/server.pem`, '--key-file', `${DIR}/server-key.pem`,
    ],
    'etcd.log',
  );
  await waitFor('TLS etcd healthy', async () => (await run('nsenter', [`--net=/run/netns/${NS}`, 'etcdctl', `--endpoints=${ENDPOINT}`, `--cacert=${DIR}/sca.pem`, 'endpoint', 'health'])).code === 0, 30_000, 200);
});

afterAll(async () => {
  for (const pid of pids) await killAndWait(pid, 'SIGKILL', 5_000);
  await run('ip', ['netns', 'del', NS]);
  if (!process.env.LOOM_KEEP_TEST_LOGS) fs.rmSync(DIR, { recursive: true, force: true });
});

test('wrong TLS combinations and unreadable files stop loomd at start-up, naming the flag and the file', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['nocA', ['--etcd-cert', `${FIX}/client.pem`, '--etcd-key', `${FIX}/client-key.pem`], /--etcd-cert without --etcd-ca/],
    ['nokey', ['--etcd-ca', `${DIR}/sca.pem`, '--etcd-cert', `${FIX}/client.pem`], /--etcd-cert needs --etcd-key/],
    ['missing', ['--etcd-ca', `${DIR}/no-such-ca.pem`], /--etcd-ca .*no-such-ca\.pem: cannot read it \(ENOENT\)/],
    ['notpem', ['--etcd-ca', `${DIR}/san.ext`], /--etcd-ca .*san\.ext: not a PEM file/],
    ['wrongkey', ['--etcd-ca', `${DIR}/sca.pem`, '--etcd-cert', `${FIX}/client.pem`, '--etcd-key', `${FIX}/other-key.pem`], /is not the private key of --etcd-cert/],
  ];
  for (const [name, tls, message] of cases) {
    const l = startLoomd(name, tls);
    expect(await exited(l.pid, 20_000)).toBe(true);
    expect(l.log()).toMatch(/loomd could not start/);
    expect(l.log()).toMatch(message);
  }
});

test('a valid but wrong CA: plugin calls answer at once, one log line per 30 s carries the TLS error, attempts back off, memory stays flat', async () => {
  const l = startLoomd('wrongca', ['--etcd-ca', `${FIX}/ca.pem`]);
  await waitFor('loomd admin socket', async () => (await unixRequest(l.admin, 'GET', '/v1/status', undefined, 2_000).catch(() => undefined))?.status === 200, 30_000, 100);
  const rss: number[] = [];
  const started = Date.now();
  let subnet = 0;
  while (Date.now() - started < 20_000) {
    const t0 = Date.now();
    expect((await pluginCall(l.socket, 'IpamDriver.GetDefaultAddressSpaces', {})).status).toBe(200);
    const pool = await pluginCall(l.socket, 'IpamDriver.RequestPool', { AddressSpace: 'LoomLocal', Pool: `198.19.${200 + subnet++}.0/24`, SubPool: '', Options: {}, V6: false });
    expect(pool.json?.Err ?? '').toBe('');
    expect(Date.now() - t0).toBeLessThan(1_000);
    rss.push(rssMb(l.pid));
    await sleep(1_000);
  }
  const status = (await unixRequest(l.admin, 'GET', '/v1/status')).json;
  expect(status.cluster.healthy).toBe(false);
  expect(status.cluster.etcd.lastError).toMatch(/certificate|SSL|TLS|handshake|UNAVAILABLE/i);
  // Backoff 250 ms doubling to 5 s: about 9 attempts in 20 s, never a spin.
  expect(status.cluster.session.attempts).toBeLessThan(20);
  const warnings = l.log().split('\n').filter((x) => /cluster store \(etcd\) (still )?unreachable; retrying/.test(x));
  expect(warnings.length).toBeGreaterThanOrEqual(1);
  expect(warnings.length).toBeLessThanOrEqual(3);
  expect(Math.max(...rss)).toBeLessThan(150);
  expect(Math.max(...rss) - Math.min(...rss)).toBeLessThan(30);
  console.log(`wrong CA: ${status.cluster.session.attempts} attempts in ~20 s, ${warnings.length} warning line(s), RSS ${Math.min(...rss).toFixed(0)}-${Math.max(...rss).toFixed(0)} MB, last error: ${status.cluster.etcd.lastError}`);
});

test('the right CA joins (the TLS path itself works)', async () => {
  const l = startLoomd('goodca', ['--etcd-ca', `${DIR}/sca.pem`]);
  await waitFor('joined', async () => /cluster store \(etcd\) reachable/.test(l.log()), 30_000, 200);
  await waitFor('host registered in etcd', async () => {
    const r = await run('nsenter', [`--net=/run/netns/${NS}`, 'etcdctl', `--endpoints=${ENDPOINT}`, `--cacert=${DIR}/sca.pem`, 'get', '--prefix', '--keys-only', '/loom/v1/hosts/']);
    return r.stdout.includes('/loom/v1/hosts/');
  }, 20_000, 200);
});
