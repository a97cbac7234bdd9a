/**
 * One observation for the reconciler's planner: Docker's view first (without any lock,
 * bounded by a deadline), then loom's state and the kernel (links with their owner marks,
 * addresses, firewall drift) and the sandboxes of endpoints whose veth is gone.
 */
import type { NetlinkKernel } from '../kernel/netlink-kernel';
import { isUnfinishedLink, ownerOf } from '../kernel/link-owner';
import { isNetnsFile, NetnsPaths } from '../kernel/netns-file';
import type { NetworkFirewall } from '../network/network-firewall';
import type { NetworkTable } from '../network/network-table';
import type { IpamService } from '../../ipam-driver/index';
import type { DockerViewSource } from './docker-view';
import type { Observed, ObservedLink } from './plan';
import type { LinkInfo } from '../kernel/netlink-codec';
import type { OverlayNetns } from '../kernel/overlay-netns';
import * as fs from 'node:fs';

export interface ObserveSources {
  networks: NetworkTable;
  ipam: IpamService;
  kernel: NetlinkKernel;
  firewall: NetworkFirewall;
  docker: DockerViewSource | undefined;
  /** Where this process opens a SandboxKey (managed plugin: --netns-dir); default: Docker's paths. */
  netns?: NetnsPaths;
  options: { dockerTimeoutMs: number };
  /** The overlay namespaces (their links are observed too); absent: not looked into. */
  overlayNs?: Pick<OverlayNetns, 'exists' | 'open'>;
}

export async function observe(d: ObserveSources): Promise<Observed> {
  const at = Date.now();
  const docker = d.docker ? await withTimeout(d.docker(), d.options.dockerTimeoutMs) : undefined;
  const list = d.networks.list();
  const endpoints = list.flatMap((n) => n.endpoints);
  const links = await d.kernel.listLinks();
  const linkNames = new Set(links.map((l) => l.name));
  const byIndex = new Map(links.map((l) => [l.index, l.name]));
  const nsLinks = new Map<string, ObservedLink[]>();
  for (const n of list) {
    const ns = n.record.overlay?.ns;
    if (!ns || !d.overlayNs?.exists(ns.netns)) continue;
    const fd = d.overlayNs.open(ns.netns);
    try {
      const inside = await d.kernel.listLinksIn(await d.kernel.nsidOf(fd));
      nsLinks.set(ns.netns, inside.map((l) => observedLink(l, d.kernel.mark)));
      for (const l of inside) linkNames.add(l.name);
    } finally {
      fs.closeSync(fd);
    }
  }
  const bridgeAddresses = new Map<string, string[]>();
  for (const a of await d.kernel.listAddresses()) {
    const name = byIndex.get(a.index);
    if (name) bridgeAddresses.set(name, [...(bridgeAddresses.get(name) ?? []), a.cidr]);
}
  return {
    at,
    networks: list.map((n) => n.record),
    endpoints,
    pools: d.ipam.listPools(),
    links: links.map((l) => observedLink(l, d.kernel.mark)),
    ...(d.overlayNs ? { nsLinks } : {}),
    bridgeAddresses,
    firewallDrift: await d.firewall.check(),
    docker,
    // Only asked for endpoints whose veth is gone (the planner's replumb rule): no file check per endpoint and pass.
    liveSandboxes: new Set(endpoints.filter((e) => !linkNames.has(e.hostIf) && e.sandboxKey && isNetnsFile((d.netns ?? new NetnsPaths()).local(e.sandboxKey))).map((e) => e.id)),
  };
  }

function observedLink(l: LinkInfo, mark: string | undefined): ObservedLink {
  return { name: l.name, kind: l.kind, up: l.up, owner: ownerOf(l.alias, mark ?? ''), unfinished: mark !== undefined && isUnfinishedLink(l, mark) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
    );
  });
}
