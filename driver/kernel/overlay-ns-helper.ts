#!/usr/bin/env node
/**
 * Runs inside an overlay network's namespace (started by loomd as
 * `nsenter --net=/run/netns/<name> node overlay-ns-helper.js '<json>'`, overlay-netns.ts) and
 * makes it right, idempotently: loopback up; br_netfilter off for the namespace's bridge (the
 * inner frames of the overlay never meet netfilter's IP hooks; the settings are per namespace
 * and 1 in a new one); the bridge (marked as this loomd's) with its MTU, without IPv6, up; the
 * named ports on the bridge and up. Node cannot switch namespaces itself.
 */
import { promises as fsp } from 'node:fs';
import { NetlinkKernel } from './netlink-kernel';
import type { NsSetupRequest, NsSetupResult } from './overlay-netns';
import { runHelper } from './helper-process';

async function write(file: string, value: string): Promise<void> {
  await fsp.writeFile(file, value).catch((err: Error) => {
    throw new Error(`${file}=${value}: ${err.message}`);
  });
}

async function main(req: NsSetupRequest): Promise<NsSetupResult> {
  const k = new NetlinkKernel(req.mark);
  const root = req.procSys.replace(/\/+$/, '');
  try {
    await k.setUp('lo');
    for (const leaf of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables', 'bridge-nf-call-arptables']) {
      await write(`${root}/net/bridge/${leaf}`, req.bridgeNf).catch((err) => {
        // No br_netfilter at all: nothing hands bridged frames to the IP hooks.
        if (!String(err).includes('ENOENT')) throw err;
      });
    }
    let bridge = await k.findLink(req.bridge);
    const createdBridge = !bridge;
    if (!bridge) {
      await k.createBridge(req.bridge, req.mtu);
      bridge = await k.findLink(req.bridge);
    } else if (bridge.mtu !== req.mtu) {
      await k.setMtu(req.bridge, req.mtu);
    }
    await write(`${root}/net/ipv6/conf/${req.bridge}/disable_ipv6`, '1').catch(() => undefined);
    await k.setUp(req.bridge);
    // Every veth in the namespace is this loomd's (containers' host ends are made there without a mark).
    const ports = req.attach === '*' ? (await k.listLinks()).filter((l) => l.kind === 'veth') : await Promise.all(req.attach.map((p) => k.findLink(p)));
    for (const link of ports) {
      if (!link) continue;
      if (link.master !== bridge?.index) {
        await k.setMaster(link.name, req.bridge);
        if (req.isolate && !(req.open ?? []).includes(link.name)) await k.setPortIsolated(link.name, true);
      }
      if (!link.up) await k.setUp(link.name);
    }
    return { createdBridge };
  } finally {
    await k.close();
  }
}

if (require.main === module) runHelper(main);
