/**
 * Kernel parameters through /proc/sys (no `sysctl` binary). Only loom's own
 * interfaces and the forwarding switches are ever written.
 *
 * The root is given to the constructor, once, by the composition root (--proc-sys): the
 * managed plugin's own /proc/sys is read-only, so it gets the host's /proc/sys/net bound
 * elsewhere. No module-level state: whoever writes sysctls is handed a Sysctl.
 */
import { promises as fs } from 'node:fs';
import { LoomError } from '../../lib/errors';

/** Where the kernel shows its parameters unless told otherwise. */
export const PROC_SYS = '/proc/sys';

export type IpFamilyDir = 'ipv4' | 'ipv6';

export class Sysctl {
  private readonly root: string;

  constructor(root: string = PROC_SYS) {
    this.root = `${root.replace(/\/+$/, '')}/`;
  }

  private pathOf(key: string): string {
    if (!/^[a-z0-9_.\-/]+$/i.test(key) || key.includes('..')) throw new LoomError('invalid', `invalid sysctl key ${key}`);
    // Keys are dotted; per-interface keys (whose names may contain dots) use ifacePath instead.
    return this.root + key.replace(/\./g, '/');
  }

  /** A dotted key (`net.ipv4.ip_forward`); undefined when it cannot be read. */
  async read(key: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(this.pathOf(key), 'utf8')).trim();
    } catch {
      return undefined;
    }
  }

  async write(key: string, value: string): Promise<void> {
    try {
      await fs.writeFile(this.pathOf(key), value);
    } catch (err) {
      throw new LoomError('unavailable', `sysctl ${key}=${value}: ${(err as Error).message}`);
    }
  }

  /** Per-interface keys take the interface name verbatim (it may contain dots). */
  ifacePath(family: IpFamilyDir, ifname: string, leaf: string): string {
    return `${this.root}net/${family}/conf/${ifname}/${leaf}`;
  }

  async writeIface(family: IpFamilyDir, ifname: string, leaf: string, value: string): Promise<void> {
    try {
      await fs.writeFile(this.ifacePath(family, ifname, leaf), value);
    } catch (err) {
      throw new LoomError('unavailable', `sysctl net.${family}.conf.${ifname}.${leaf}=${value}: ${(err as Error).message}`);
    }
  }

  /** Undefined when the interface or the key does not exist (older kernels lack some keys). */
  async readIface(family: IpFamilyDir, ifname: string, leaf: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(this.ifacePath(family, ifname, leaf), 'utf8')).trim();
    } catch {
      return undefined;
    }
  }
}
