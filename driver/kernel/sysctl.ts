/**
 * Kernel parameters through /proc/sys (no `sysctl` binary). Only loom's own
 * interfaces and the forwarding switches are ever written.
 */
import { promises as fs } from 'node:fs';
import { LoomError } from '../../lib/errors';

let ROOT = '/proc/sys/';

/**
 * Where /proc/sys is, set once at start-up (--proc-sys): the managed plugin's own
 * /proc/sys is read-only, so it gets the host's /proc/sys/net bound elsewhere.
 */
export function setProcSysRoot(dir: string): void {
  ROOT = `${dir.replace(/\/+$/, '')}/`;
}

function pathOf(key: string): string {
  if (!/^[a-z0-9_.\-/]+$/i.test(key) || key.includes('..')) throw new LoomError('invalid', `invalid sysctl key ${key}`);
  // Keys are dotted; per-interface keys (whose names may contain dots) use ifaceSysctlPath instead.
  return ROOT + key.replace(/\./g, '/');
}

export async function readSysctl(key: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(pathOf(key), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  try {
    await fs.writeFile(pathOf(key), value);
  } catch (err) {
    throw new LoomError('unavailable', `sysctl ${key}=${value}: ${(err as Error).message}`);
  }
}

/** Per-interface keys take the interface name verbatim (it may contain dots). */
export function ifaceSysctlPath(family: 'ipv4' | 'ipv6', ifname: string, leaf: string): string {
  return `${ROOT}net/${family}/conf/${ifname}/${leaf}`;
}

export async function writeIfaceSysctl(family: 'ipv4' | 'ipv6', ifname: string, leaf: string, value: string): Promise<void> {
  try {
    await fs.writeFile(ifaceSysctlPath(family, ifname, leaf), value);
  } catch (err) {
    throw new LoomError('unavailable', `sysctl net.${family}.conf.${ifname}.${leaf}=${value}: ${(err as Error).message}`);
  }
}

export async function readIfaceSysctl(family: 'ipv4' | 'ipv6', ifname: string, leaf: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(ifaceSysctlPath(family, ifname, leaf), 'utf8')).trim();
  } catch {
    return undefined;
  }
}
