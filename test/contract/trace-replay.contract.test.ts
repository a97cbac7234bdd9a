/**
 * Replays every request body dockerd 20.10 sent to a recording plugin (legacy
 * and managed, single host and swarm) against the real loomd on a temporary
 * socket, and checks each answer against the contract Docker enforces.
 * Runs inside a throwaway network namespace (npm run test:contract).
 */
import { loadTrace, TRACE_FILES, TraceCall, TraceTranslator } from '../helpers/trace';
import { startTestDaemon, TestDaemon } from '../helpers/daemon';
import { pluginCall, UnixResponse } from '../helpers/unix-http';
import { NetlinkKernel } from '../../driver/kernel/netlink-kernel';

jest.setTimeout(120_000);


const CIDR = /^[0-9a-f.:]+\/\d{1,3}$/;

let kernel: NetlinkKernel;
beforeAll(() => {
  kernel = new NetlinkKernel();
});
afterAll(() => kernel.close());

/** Checks one answer against what dockerd requires of it. */
async function checkAnswer(call: TraceCall, body: any, res: UnixResponse): Promise<void> {
  const where = `${call.method} (trace seq ${call.seq}, "${call.marker}")`;
  if (res.status !== 200) throw new Error(`${where}: HTTP ${res.status} ${res.body}`);
  const r = res.json;
  switch (call.method) {
    case 'Plugin.Activate':
      expect(r).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
      break;
    case 'NetworkDriver.GetCapabilities':
      expect(['local', 'global']).toContain(r.Scope);
      break;
    case 'IpamDriver.GetCapabilities':
      expect(typeof r.RequiresRequestReplay).toBe('boolean');
      break;
    case 'IpamDriver.RequestPool':
      expect(r.Pool).toMatch(CIDR);
      expect(typeof r.PoolID).toBe('string');
      if (body.Pool) expect(r.Pool).toBe(body.Pool);
      break;
    case 'IpamDriver.RequestAddress':
      expect(r.Address).toMatch(CIDR);
      if (body.Address) expect(r.Address.split('/')[0]).toBe(body.Address);
      break;
    case 'NetworkDriver.CreateEndpoint': {
      // Docker refuses any interface field it already set, even with the same value.
      expect(r.Interface?.Address).toBeUndefined();
      expect(r.Interface?.AddressIPv6).toBeUndefined();
      if (body.Interface?.MacAddress) expect(r.Interface?.MacAddress).toBeUndefined();
      else expect(r.Interface.MacAddress).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      break;
    }
    case 'NetworkDriver.Join': {
      expect(r.InterfaceName.DstPrefix).toBe('eth');
      expect(r.InterfaceName.SrcName.length).toBeLessThanOrEqual(15);
      // The interface must exist in the host namespace when Docker looks it up.
      expect(await kernel.findLink(r.InterfaceName.SrcName)).toBeDefined();
      if (r.Gateway !== undefined) expect(r.Gateway).not.toContain('/');
      break;
    }
    case 'NetworkDriver.EndpointOperInfo':
      expect(r).toEqual({ Value: {} });
      break;
    default:
      expect(r).toBeDefined();
  }
}

async function replay(file: string, daemon: TestDaemon): Promise<{ sent: number; skipped: number }> {
  const tr = new TraceTranslator();
  /** Addresses loom holds, per loom pool id, to recognise IPAM replays. */
  const held = new Map<string, Set<string>>();
  let replayMode = false;
  let sent = 0;
  let skipped = 0;
  for (const call of loadTrace(file)) {
    const body: any = call.req === null ? undefined : tr.value(call.req);
    if (call.method === 'IpamDriver.GetCapabilities') {
      replayMode = Boolean((call.resp as any)?.RequiresRequestReplay);
    }
    // The recording plugin once advertised RequiresRequestReplay; loom does not, so dockerd
    // would never send those replays to it (docs/state.md). Skip exactly the replayed calls.
    if (replayMode && call.method === 'IpamDriver.RequestPool' && body.Pool && tr.poolIds.has(tr.text(`LoomLocal/${body.Pool}`))) {
      skipped++;
      continue;
    }
    if (replayMode && call.method === 'IpamDriver.RequestAddress' && body.Address && held.get(body.PoolID)?.has(body.Address)) {
      skipped++;
      continue;
    }
    const res = await pluginCall(daemon.socket, call.method, body);
    sent++;
    await checkAnswer(call, body, res);
    if (call.method === 'IpamDriver.RequestPool') {
      tr.learnPool(call.resp as any, res.json);
    } else if (call.method === 'IpamDriver.RequestAddress') {
      const set = held.get(body.PoolID) ?? new Set<string>();
      set.add(res.json.Address.split('/')[0]);
      held.set(body.PoolID, set);
    } else if (call.method === 'IpamDriver.ReleaseAddress') {
      held.get(body.PoolID)?.delete(body.Address);
    }
  }
  return { sent, skipped };
}

describe.each(TRACE_FILES)('replaying %s', (file) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon();
  });
  afterAll(async () => {
    // Traces where the recording plugin failed on purpose leave networks Docker rolled back.
    for (const n of (await daemon.state()).networks) await pluginCall(daemon.socket, 'NetworkDriver.DeleteNetwork', { NetworkID: n.id });
    await daemon.stop();
  });

  test('every recorded request gets an answer dockerd accepts', async () => {
    const { sent } = await replay(file, daemon);
    expect(sent).toBeGreaterThan(0);
  });
});

describe('a complete lifecycle leaves nothing behind', () => {
  test('legacy-basic.jsonl: networks, pools, addresses, bridges and veths are all gone at the end', async () => {
    const daemon = await startTestDaemon();
    try {
      await replay('legacy-basic.jsonl', daemon);
      const state = await daemon.state();
      expect(state.networks).toEqual([]);
      expect(state.pools).toEqual([]);
      const links = await kernel.listLinks();
      expect(links.filter((l) => /^(lv|lc)[0-9a-f]{12}$/.test(l.name))).toEqual([]);
    } finally {
      await daemon.stop();
    }
  });
});
