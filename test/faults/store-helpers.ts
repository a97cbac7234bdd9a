/** Shared by the store fault tests: loomctl, loom's state in a comparable form, the store's files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, TestHost } from '../helpers/test-host';
import type { RunResult } from '../helpers/run';

export const LOOMCTL = path.join(process.env.LOOM_DIST ?? path.join(REPO, 'dist'), 'driver', 'cli', 'loomctl.js');

/** `loomctl store …` against the host's state directory (run inside the host's mount namespace). */
export function loomctlStore(host: TestHost, args: string[]): Promise<RunResult> {
  return host.exec([process.execPath, LOOMCTL, 'store', ...args, '--state-dir', host.stateDir], { timeoutMs: 60_000 });
}

/** Networks (with endpoint addresses and MACs) and pools (with allocations), sorted, without times. */
export async function comparableState(host: TestHost): Promise<unknown> {
  const s = await host.loomState();
  return {
    networks: s.networks
      .map((n) => ({
        id: n.id,
        bridge: n.bridge,
        ipv4: n.ipv4,
        endpoints: (n.endpoints as Array<Record<string, unknown>>).map((e) => ({ id: e.id, address: e.address, mac: e.mac, hostIf: e.hostIf })).sort((a, b) => String(a.id).localeCompare(String(b.id))),
      }))
      .sort((a, b) => String(a.id).localeCompare(String(b.id))),
    pools: s.pools
      .map((p) => ({ id: p.id, allocations: (p.allocations as Array<{ address: string; kind: string }>).map((a) => `${a.address} ${a.kind}`).sort() }))
      .sort((a, b) => String(a.id).localeCompare(String(b.id))),
  };
}

export const dbFiles = (host: TestHost, suffix: string): string[] =>
  fs.readdirSync(path.join(host.stateDir, 'db')).filter((n) => n.endsWith(suffix)).map((n) => path.join(host.stateDir, 'db', n));

/** Starts loomd expecting it to refuse; returns the log lines written by that attempt. */
export async function expectRefusal(host: TestHost): Promise<string> {
  const before = host.loomdLog().length;
  await expect(host.startLoomd()).rejects.toThrow(/loomd exited/);
  host.loomdPid = undefined;
  return host.loomdLog().slice(before);
}
