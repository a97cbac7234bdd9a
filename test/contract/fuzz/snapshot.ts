/**
 * What the fuzz test compares before and after hostile requests: loom's state (admin API), the
 * kernel's links and addresses, the sockets this namespace holds and the nftables ruleset.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { unixRequest } from '../../helpers/unix-http';
import type { AddressInfo, LinkInfo, NetlinkKernel } from '../../../driver/kernel/netlink-kernel';

export interface Snapshot {
  /** loom's networks and pools, the kernel's links and addresses (JSON). */
  core: string;
  /** Listening TCP and bound UDP sockets, one a line. */
  sockets: string;
  /** `nft list ruleset`. */
  nft: string;
}

function nftRuleset(): Promise<string> {
  return new Promise((resolve) => {
    execFile('nft', ['list', 'ruleset'], (err, stdout, stderr) => resolve(err ? `nft failed: ${stderr}` : stdout));
  });
}

/** Listening TCP and bound UDP sockets of this namespace (loom holds published host ports with them). */
export async function boundSockets(): Promise<string[]> {
  const out: string[] = [];
  for (const f of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const text = await fs.promises.readFile(`/proc/net/${f}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || (f.startsWith('tcp') && cols[3] !== '0A')) continue;
      out.push(`${f} ${cols[1]}`);
    }
  }
  return out.sort();
}

/** loom's state (as TestDaemon.state() reads it) and the kernel's links and addresses (IPv6 link-local ones come and go on their own). */
export async function coreSnapshot(adminSocket: string, kernel: NetlinkKernel): Promise<string> {
  // One netlink dump at a time: two concurrent dumps on one socket fail ("Multipart message not terminated properly").
  const kernelView = async (): Promise<[LinkInfo[], AddressInfo[]]> => [await kernel.listLinks(), await kernel.listAddresses()];
  const [networks, pools, [links, addrs]] = await Promise.all([
    unixRequest(adminSocket, 'GET', '/v1/networks').then((r) => r.json),
    unixRequest(adminSocket, 'GET', '/v1/ipam').then((r) => r.json),
    kernelView(),
  ]);
  return JSON.stringify({
    networks,
    pools,
    links: links.map((l) => `${l.name} ${l.kind} ${l.master} ${l.mtu} ${l.up} ${l.mac}`).sort(),
    addrs: addrs
      .filter((a) => !a.cidr.startsWith('fe80:'))
      .map((a) => `${a.index} ${a.cidr}`)
      .sort(),
  });
}

export async function fullSnapshot(adminSocket: string, kernel: NetlinkKernel): Promise<Snapshot> {
  const [core, sockets, nft] = await Promise.all([coreSnapshot(adminSocket, kernel), boundSockets().then((x) => x.join('\n')), nftRuleset()]);
  return { core, sockets, nft };
}

/** A short account of where two core snapshots differ. */
export function describeDiff(before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown>;
  const b = JSON.parse(after) as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(a)) {
    if (!isDeepStrictEqual(a[k], b[k])) parts.push(`${k}: ${JSON.stringify(a[k]).slice(0, 600)} -> ${JSON.stringify(b[k]).slice(0, 600)}`);
  }
  return parts.join('\n  ');
}
