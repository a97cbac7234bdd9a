#!/usr/bin/env node
/**
 * Runs inside a container's network namespace (started by loomd as
 * `nsenter --net=<SandboxKey> node netns-helper.js '<json>'`) to finish re-plumbing an
 * endpoint whose veth pair was deleted while the container ran: the new container end
 * (already moved in, carrying its MAC and MTU) is renamed to the first free ethN, set up,
 * given its addresses, and the default routes are restored if the container lost them.
 * Node cannot switch network namespaces itself; this small process does it with netlink.
 */
import { NetlinkKernel } from './netlink-kernel';
import { bitsOf, parseIpMaybeCidr } from '../../lib/prefix';
import { runHelper } from './helper-process';

export interface ReplumbRequest {
  ifname: string;
  prefix: string;
  addresses: string[];
  gateway4?: string;
  gateway6?: string;
}

async function main(req: ReplumbRequest): Promise<{ ifname: string }> {
  const k = new NetlinkKernel();
  try {
    const links = await k.listLinks();
    const taken = new Set(links.map((l) => l.name));
    let name = req.ifname;
    for (let i = 0; i < 256; i++) {
      if (!taken.has(`${req.prefix}${i}`)) {
        name = `${req.prefix}${i}`;
        break;
      }
    }
    await k.rename(req.ifname, name);
    await k.setUp(name);
    for (const a of req.addresses) {
      const ip = parseIpMaybeCidr(a);
      await k.addAddress(name, ip.family, ip.value, ip.len ?? bitsOf(ip.family));
    }
    const routes = await k.listRoutes();
    for (const [family, gw] of [[4, req.gateway4], [6, req.gateway6]] as const) {
      if (gw && !routes.some((r) => r.prefix.family === family && r.prefix.len === 0)) await k.addDefaultRoute(name, gw);
    }
    return { ifname: name };
  } finally {
    await k.close();
  }
}

if (require.main === module) runHelper(main);
