/**
 * Paths that arrive in requests (Join's SandboxKey) against the real loomd: malformed ones are
 * refused and change nothing; a FIFO where a namespace should be never freezes the daemon (the
 * reconciler's re-plumb only ever opens such a path non-blocking, type-checked); a real namespace
 * file is re-plumbed through the descriptor loom opened, never through the path again.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestDaemon, TestDaemon } from '../helpers/daemon';
import { run, runOk, waitFor } from '../helpers/run';
import { pluginCall, unixRequest } from '../helpers/unix-http';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';

jest.setTimeout(60_000);

let daemon: TestDaemon;
let kernel: NetlinkKernel;
const NET = 'fa0170'.padEnd(64, '0');
const netns = `loomt-sbx-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  daemon = await startTestDaemon();
  kernel = new NetlinkKernel();
  const net = {
    NetworkID: NET,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'LoomLocal', Pool: '198.18.47.0/24', Gateway: '198.18.47.1/24' }],
    IPv6Data: [],
  };
  expect((await pluginCall(daemon.socket, 'NetworkDriver.CreateNetwork', net)).status).toBe(200);
});
afterAll(async () => {
  await pluginCall(daemon.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: NET }).catch(() => undefined);
  kernel.close();
  await daemon.stop();
  await run('ip', ['netns', 'del', netns]);
});

async function endpoint(id: string, address: string): Promise<void> {
  const ep = { NetworkID: NET, EndpointID: id, Interface: { Address: address, AddressIPv6: '', MacAddress: '' }, Options: {} };
  expect((await pluginCall(daemon.socket, 'NetworkDriver.CreateEndpoint', ep)).status).toBe(200);
}

/** Answers within `ms` while something else may be stuck (the daemon is not frozen). */
async function answersWithin(ms: number): Promise<void> {
  const t0 = Date.now();
  const r = await unixRequest(daemon.socket, 'POST', '/Plugin.Activate', undefined, ms);
  expect(r.status).toBe(200);
  expect(Date.now() - t0).toBeLessThan(ms);
}

test('malformed SandboxKeys are refused and change nothing', async () => {
  const id = 'ba0001'.padEnd(64, '1');
  await endpoint(id, '198.18.47.10/24');
  for (const key of ['relative/netns/x', '/var/run/docker/netns/../netns/x', '/x', '/var/run/docker/netns/x\n', '/var/run/docker/netns/', '/var/run/docker/netns/a b']) {
    const before = JSON.stringify(await daemon.state());
    const r = await pluginCall(daemon.socket, 'NetworkDriver.Join', { NetworkID: NET, EndpointID: id, SandboxKey: key });
    expect(r.status).toBe(500);
    expect(r.json.Err).toMatch(/SandboxKey/);
    expect(JSON.stringify(await daemon.state())).toBe(before);
  }
  expect((await pluginCall(daemon.socket, 'NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: id })).status).toBe(200);
});

test('a FIFO as SandboxKey never freezes loomd, even when the reconciler looks at it', async () => {
  const dir = path.join(daemon.dir, 'netns');
  fs.mkdirSync(dir, { recursive: true });
  const fifo = path.join(dir, 'f1f0');
  await runOk('mkfifo', [fifo]);
  const id = 'ba0002'.padEnd(64, '2');
  await endpoint(id, '198.18.47.11/24');
  expect((await pluginCall(daemon.socket, 'NetworkDriver.Join', { NetworkID: NET, EndpointID: id, SandboxKey: fifo })).status).toBe(200);
  // The container end "left" and the host end is deleted by hand: the reconciler considers a re-plumb.
  expect(await kernel.deleteLink(`lv${id.slice(0, 12)}`)).toBe(true);
  const pass = unixRequest(daemon.adminSocket, 'POST', '/v1/reconcile', undefined, 20_000);
  await answersWithin(1_000);
  const result = await pass;
  expect(result.status).toBe(200);
  expect(JSON.stringify(result.json.applied)).not.toMatch(/replumb-endpoint/);
  await answersWithin(1_000);
  expect((await pluginCall(daemon.socket, 'NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: id })).status).toBe(200);
});

test('a real namespace is re-plumbed through the descriptor loom opened', async () => {
  await runOk('ip', ['netns', 'add', netns]);
  const id = 'ba0003'.padEnd(64, '3');
  await endpoint(id, '198.18.47.12/24');
  const key = `/run/netns/${netns}`;
  expect((await pluginCall(daemon.socket, 'NetworkDriver.Join', { NetworkID: NET, EndpointID: id, SandboxKey: key })).status).toBe(200);
  // Docker's part of a join: move the container end in (then loom's veth is deleted by hand).
  await runOk('ip', ['link', 'set', `lc${id.slice(0, 12)}`, 'netns', netns]);
  await runOk('ip', ['link', 'del', `lv${id.slice(0, 12)}`]);
  await waitFor('re-plumbed', async () => {
    const pass = await unixRequest(daemon.adminSocket, 'POST', '/v1/reconcile', undefined, 20_000);
    if (process.env.DEBUG_TEST) console.log(pass.body);
    const out = await runOk('ip', ['-n', netns, '-j', 'addr', 'show']);
    return out.includes('198.18.47.12');
  }, 20_000, 300);
  expect(await kernel.findLink(`lv${id.slice(0, 12)}`)).toBeDefined();
  expect((await pluginCall(daemon.socket, 'NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: id })).status).toBe(200);
});
