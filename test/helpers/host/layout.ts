/**
 * Where a test host's pieces live: its namespaces' names, its private directory under ROOT
 * (dockerd's data, exec root and socket, the plugin directory, loomd's state, logs, the owner
 * stamp) and the file that holds its persistent mount namespace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (this file runs from test/helpers/host or from dist-tools/test/helpers/host). */
export const REPO = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
/** Every test host's directory, the cluster owner stamps and the cached image tarballs live here. */
export const ROOT = '/tmp/loom-e2e';
/** Mount namespace handles (bind-mounted files, like `ip netns` does for network namespaces). */
export const MNT_DIR = '/run/loom-test/mnt';
/** "The outside world" behind each host's uplink, and the host's own address on it. */
export const OUTSIDE_IP = '198.18.254.1';
export const UPLINK_IP = '198.18.254.2';

export interface HostLayout {
  /** Six hex digits, unique among live test hosts. */
  name: string;
  netns: string;
  /** The namespace that plays the rest of the world. */
  outNetns: string;
  dir: string;
  /** The handle of the host's persistent mount namespace. */
  mntFile: string;
  dockerSock: string;
  /** Bind-mounted over /run/docker/plugins inside the host. */
  pluginDir: string;
  stateDir: string;
  /** loomd's admin socket (a managed plugin's lives in its state mount). */
  adminSocket: string;
  /** Who owns the host (see reaper.ts). */
  ownerFile: string;
}

/** `adminSocket` is relative to the host's directory (default admin.sock). */
export function hostLayout(name: string, adminSocket = 'admin.sock'): HostLayout {
  const dir = path.join(ROOT, name);
  return {
    name,
    netns: `loomt-${name}`,
    outNetns: `loomt-${name}-o`,
    dir,
    mntFile: path.join(MNT_DIR, name),
    dockerSock: path.join(dir, 'docker.sock'),
    pluginDir: path.join(dir, 'plugins'),
    stateDir: path.join(dir, 'loom-state'),
    adminSocket: path.resolve(dir, adminSocket),
    ownerFile: path.join(dir, 'owner'),
  };
}

/** The `nsenter` arguments that enter a host's network and mount namespaces. */
export function enterHost(l: HostLayout): string[] {
  return [`--net=/run/netns/${l.netns}`, `--mount=${l.mntFile}`, '--'];
}
