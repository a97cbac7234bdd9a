/**
 * Fault: a hostile SandboxKey. A Join replayed straight to loomd's socket names a FIFO (inside
 * the engine's own netns directory) as a running container's namespace; then that container's
 * veth is deleted by hand, so the reconciler considers re-plumbing it into "its namespace".
 * Before the fix loomd opened the path blocking and froze: every docker run/network call on the
 * host hung behind it. Now the path is only ever opened non-blocking and type-checked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runOk, sleep, waitFor } from '../helpers/run';
import { TestHost } from '../helpers/test-host';
import { pluginCall, unixRequest } from '../helpers/unix-http';

jest.setTimeout(300_000);

let h: TestHost;
beforeAll(async () => {
  h = await TestHost.create();
  await h.startLoomd();
  await h.cliOk(['network', 'create', '-d', h.driver, '--ipam-driver', h.driver, '--subnet', '198.18.60.0/24', 'n1']);
  for (const c of ['c1', 'c2', 'c3']) await h.cliOk(['run', '-d', '--init', '--name', c, '--network', 'n1', 'local/busybox', 'sleep', '86400']);
});
afterAll(async () => {
  await h?.destroy();
});

/** Wall time of one docker CLI call that must succeed. */
async function timed(args: string[]): Promise<number> {
  const t0 = Date.now();
  await h.cliOk(args, { timeoutMs: 60_000 });
  return Date.now() - t0;
}

test('a FIFO named as a container namespace never freezes loomd or dockerd', async () => {
  const netId = await h.cliOk(['network', 'inspect', '-f', '{{.Id}}', 'n1']);
  const epId = await h.cliOk(['inspect', '-f', '{{.NetworkSettings.Networks.n1.EndpointID}}', 'c3']);
  const fifo = path.join(h.dir, 'exec', 'netns', 'f1f0f1f0f1f0');
  await runOk('mkfifo', [fifo]);
  try {
    const join = await pluginCall(h.socket, 'NetworkDriver.Join', { NetworkID: netId, EndpointID: epId, SandboxKey: fifo, Options: {} });
    expect(join.status).toBe(200);
    await h.execOk(['ip', 'link', 'del', `lv${epId.slice(0, 12)}`]);
    // Reconcile passes run every 2 s here; force a few more and keep Docker busy meanwhile.
    const passes = Promise.all([1, 2, 3].map(() => unixRequest(h.adminSocket, 'POST', '/v1/reconcile', undefined, 30_000)));
    const deadline = Date.now() + 12_000;
    const timings: number[] = [];
    for (let i = 0; Date.now() < deadline && i < 20; i++) {
      const t0 = Date.now();
      const r = await unixRequest(h.socket, 'POST', '/NetworkDriver.GetCapabilities', undefined, 5_000);
      expect(r.status).toBe(200);
      timings.push(Date.now() - t0);
      await sleep(300);
    }
    expect(Math.max(...timings)).toBeLessThan(1_000);
    for (const r of await passes) expect(r.status).toBe(200);
    // Docker keeps working on this host: a new network, a container on it, the old containers.
    expect(await timed(['network', 'create', '-d', h.driver, '--ipam-driver', h.driver, '--subnet', '198.18.61.0/24', 'n2'])).toBeLessThan(5_000);
    expect(await timed(['run', '--rm', '--network', 'n2', 'local/busybox', 'true'])).toBeLessThan(15_000);
    const c2 = await h.containerIp('c2', 'n1');
    expect(await h.ping('c1', c2)).toBe(true);
    expect(h.loomdLog()).not.toMatch(/re-plumbed an endpoint/);
    await waitFor('the stale endpoint to be dropped by the reconciler', async () => !(await h.loomState()).networks.some((n) => n.endpoints.some((e: { id: string }) => e.id === epId)), 30_000, 500);
  } finally {
    fs.rmSync(fifo, { force: true });
  }
});
