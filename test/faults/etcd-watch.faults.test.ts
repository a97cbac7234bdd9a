/**
 * The etcd client layer against a real etcd (one member on the host's loopback, on ports
 * of this run; the built client in a child process where a crash would show), where it meets etcd's own behaviour rather than the in-memory store's:
 * a watch from a compacted revision is created and then cancelled by etcd; loom learns it
 * through onCancelled and the process survives (a cancel request for it would make the
 * etcd3 client throw out of its stream handler); a session then re-creates its watch from
 * a fresh listing; replacing the client (renew) leaves no timers running; a hung etcd
 * (SIGSTOP) makes calls fail by their deadline, not hang.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdStore } from '../../driver/cluster/etcd-store';
import { ClusterHealth } from '../../lib/cluster/health';
import { ClusterSession } from '../../driver/cluster/session';
import { silentLogger } from '../../lib/logger';
import { killAndWait, run, sleep, waitFor } from '../helpers/run';
import { REPO } from '../helpers/test-host';

jest.setTimeout(120_000);

const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-watch-'));
// etcd on the host's loopback, on ports of this run (the client runs in this test process).
const PORT = 24_000 + 2 * randomInt(0, 2_000);
const URL = `http://127.0.0.1:${PORT}`;
const PEER = `http://127.0.0.1:${PORT + 1}`;
const log = silentLogger();
let etcdPid = 0;

beforeAll(async () => {
  const out = fs.openSync(path.join(DIR, 'etcd.log'), 'a');
  const child = spawn('etcd', ['--name', 'w1', '--data-dir', path.join(DIR, 'etcd'), '--listen-client-urls', URL, '--advertise-client-urls', URL,
    '--listen-peer-urls', PEER, '--initial-advertise-peer-urls', PEER, '--initial-cluster', `w1=${PEER}`], { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.unref();
  etcdPid = child.pid as number;
  await waitFor('etcd healthy', async () => (await run('etcdctl', [`--endpoints=${URL}`, 'endpoint', 'health'])).code === 0, 30_000, 200);
});

afterAll(async () => {
  if (etcdPid) {
    try {
      process.kill(etcdPid, 'SIGCONT');
    } catch {
      // gone
    }
    await killAndWait(etcdPid, 'SIGKILL', 5_000);
  }
  fs.rmSync(DIR, { recursive: true, force: true });
});

/**
 * Runs in a child node process on the built client (dist/), as loomd does: an exception
 * the etcd3 client throws out of its stream handler would end that process, which is what
 * this checks (jest would swallow it in its own).
 */
const CHILD = (dist: string, url: string): string => `
const { EtcdStore } = require(${JSON.stringify(path.join(dist, 'driver', 'cluster', 'etcd-store.js'))});
const { execFileSync } = require('child_process');
const log = require('pino')({ level: 'silent' });
(async () => {
  const store = new EtcdStore({ endpoints: [${JSON.stringify(url)}] }, log);
  for (let i = 0; i < 5; i++) await store.put('/loom/v1/c/k' + i, i);
  const snap = await store.snapshot('/loom/v1/c/');
  execFileSync('etcdctl', ['--endpoints=' + ${JSON.stringify(url)}, 'compact', snap.revision]);
  let reason;
  // A second watch on the same stream right away, as the session creates its five: etcd's
  // cancellation of the first arrives meanwhile (the order that ended loomd before).
  const w = await store.watch('/loom/v1/c/', '2', { onEvent: () => {}, onCancelled: (r) => (reason = r) }, { deadline: Date.now() + 3000 }).catch(() => undefined);
  const seen = [];
  const w2 = await store.watch('/loom/v1/c/', String(BigInt(snap.revision) + 1n), { onEvent: (ev) => seen.push(ev.key), onCancelled: () => {} });
  await store.put('/loom/v1/c/new', 1);
  for (let i = 0; i < 100 && (reason === undefined || !seen.includes('/loom/v1/c/new')); i++) await new Promise((r) => setTimeout(r, 20));
  console.log('cancelled:', reason !== undefined);
  console.log('event after:', seen.includes('/loom/v1/c/new'));
  await new Promise((r) => setTimeout(r, 500)); // what a cancel request would bring back
  await w?.close();
  await w2.close();
  await store.close();
  console.log('alive');
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('a watch from a compacted revision is cancelled by etcd: onCancelled, and the process survives', async () => {
  const dist = process.env.LOOM_DIST ?? path.join(REPO, 'dist');
  const script = path.join(DIR, 'compacted.js');
  fs.writeFileSync(script, CHILD(dist, URL));
  const r = await run(process.execPath, [script], { timeoutMs: 30_000, env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') } });
  expect(r.stderr).not.toMatch(/Failed to find watcher/);
  expect(r.stdout).toContain('cancelled: true');
  expect(r.stdout).toContain('event after: true');
  expect(r.stdout).toContain('alive');
  expect(r.code).toBe(0);
});

test('a session whose watch etcd cancels re-creates it from a fresh listing', async () => {
  const store = new EtcdStore({ endpoints: [URL] }, log);
  const health = new ClusterHealth(log);
  const session = new ClusterSession(store, health, log, { ttlS: 3, onLeaseGranted: () => undefined, backoff: { initialMs: 50, maxMs: 500 } });
  const seen = new Map<string, unknown>();
  let resyncs = 0;
  session.addWatch<unknown>({
    prefix: '/loom/v1/s/',
    onResync: (all) => {
      resyncs++;
      seen.clear();
      for (const kv of all) seen.set(kv.key, kv.value);
    },
    onEvent: (ev) => (ev.type === 'put' ? seen.set(ev.key, ev.value) : seen.delete(ev.key)),
  });
  try {
    session.start();
    await waitFor('session up', async () => health.state === 'up' && !session.reconnecting, 10_000, 50);
    await store.put('/loom/v1/s/a', 1);
    await waitFor('event', async () => seen.get('/loom/v1/s/a') === 1, 5_000, 20);
    // renew() drops the client and its watches, as after an outage; the session resyncs.
    const before = resyncs;
    session.kick('test: renew', true);
    (store as EtcdStore).renew();
    await store.put('/loom/v1/s/b', 2);
    // The watch is gone with the old client: the next session pass (kicked by the loss) re-creates it.
    session.kick('watch gone');
    await waitFor('resynced', async () => seen.get('/loom/v1/s/b') === 2, 10_000, 50);
    expect(resyncs).toBeGreaterThanOrEqual(before);
  } finally {
    await session.stop();
  }
});

test('a hung etcd: calls fail by their deadline and renew leaves nothing running', async () => {
  const store = new EtcdStore({ endpoints: [URL] }, log);
  try {
    await store.put('/loom/v1/h/x', 1);
    process.kill(etcdPid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      await expect(store.get('/loom/v1/h/x', { deadline: Date.now() + 800 })).rejects.toThrow(/etcd/);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(700);
      expect(took).toBeLessThan(2_500);
      const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
      for (let i = 0; i < 20; i++) {
        store.renew();
        await store.get('/loom/v1/h/x', { deadline: Date.now() + 100 }).catch(() => undefined);
      }
      await sleep(1_000);
      const after = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
      expect(after - handles).toBeLessThan(10); // 20 replaced clients leave no sockets or timers behind
    } finally {
      process.kill(etcdPid, 'SIGCONT');
    }
    await waitFor('etcd answers again', async () => (await store.get('/loom/v1/h/x').catch(() => undefined)) !== undefined, 10_000, 100);
  } finally {
    await store.close();
  }
});
