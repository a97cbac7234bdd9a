/**
 * A test host's namespaces: a network namespace with FORWARD policy DROP (like a real host),
 * an uplink to an "outside" namespace, and a persistent mount namespace with its own sysfs,
 * /run/docker/plugins, /etc/docker and /run/containerd (dockerd cannot run under
 * `ip netns exec`, and a plugin must listen in its dockerd's mount namespace).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, runOk } from '../run';
import { ownerStamp } from '../owner';
import { enterHost, HostLayout, MNT_DIR, OUTSIDE_IP, ROOT, UPLINK_IP } from './layout';

/** Multi-host tests: a veth "underlay0" into a shared underlay namespace's bridge. */
export interface UnderlayLink {
  netns: string;
  bridge: string;
  cidr: string;
  mtu?: number;
}

/** Makes the host's directories (stamped with this process as owner) and its namespaces. */
export async function createNamespaces(l: HostLayout): Promise<void> {
  fs.mkdirSync(l.pluginDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(l.dir, 'cg'), { recursive: true });
  fs.chmodSync(ROOT, 0o700);
  fs.writeFileSync(l.ownerFile, ownerStamp());
  fs.mkdirSync(MNT_DIR, { recursive: true });
  if ((await run('mountpoint', ['-q', MNT_DIR])).code !== 0) {
    await runOk('mount', ['--bind', MNT_DIR, MNT_DIR]);
    await runOk('mount', ['--make-private', MNT_DIR]);
  }
  fs.writeFileSync(l.mntFile, '');
  fs.mkdirSync('/run/docker/plugins', { recursive: true });
  fs.mkdirSync('/etc/docker', { recursive: true });
  fs.mkdirSync('/run/containerd', { recursive: true });
  await runOk('ip', ['netns', 'add', l.netns]);
  await runOk('ip', ['netns', 'add', l.outNetns]);
  const n = ['-n', l.netns];
  const o = ['-n', l.outNetns];
  await runOk('ip', [...n, 'link', 'set', 'lo', 'up']);
  await runOk('ip', [...o, 'link', 'set', 'lo', 'up']);
  await runOk('ip', [...n, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', l.outNetns]);
  await runOk('ip', [...n, 'addr', 'add', `${UPLINK_IP}/24`, 'dev', 'uplink0']);
  await runOk('ip', [...o, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'wan0']);
  await runOk('ip', [...n, 'link', 'set', 'uplink0', 'up']);
  await runOk('ip', [...o, 'link', 'set', 'wan0', 'up']);
  await runOk('ip', [...n, 'route', 'add', 'default', 'via', OUTSIDE_IP]);
  // A real host: FORWARD policy DROP (Debian with Docker installed has it), forwarding off until someone needs it.
  await runOk('nsenter', [`--net=/run/netns/${l.netns}`, 'iptables', '-w', '-P', 'FORWARD', 'DROP']);
  await runOk('nsenter', [`--net=/run/netns/${l.netns}`, 'ip6tables', '-w', '-P', 'FORWARD', 'DROP']);
  const cg = path.join(l.dir, 'cg');
  const exec = path.join(l.dir, 'exec');
  fs.mkdirSync(exec, { recursive: true, mode: 0o700 });
  const script = [
    'set -e',
    // dockerd's exec root is a shared mount of its own, as under / on a systemd host: a managed
    // plugin's rslave mount of it then sees the namespaces of containers started after it.
    `mount --bind ${exec} ${exec}`,
    `mount --make-shared ${exec}`,
    `mount --rbind /sys/fs/cgroup ${cg}`,
    'mount -t sysfs sysfs /sys',
    `mount --move ${cg} /sys/fs/cgroup`,
    `mount --bind ${l.pluginDir} /run/docker/plugins`,
    'mount -t tmpfs tmpfs /etc/docker',
    // containerd keeps shim sockets under /run/containerd/s whatever its root: one per host.
    'mount -t tmpfs tmpfs /run/containerd',
  ].join('\n');
  await persistMountNamespace(l, script);
}

const BIND_REFUSED = /unshare: mount \S+\/ns\/mnt on \S+ failed: Invalid argument/;

/**
 * `unshare --mount=FILE` running `script` in the new mount namespace, which stays alive bound on FILE.
 *
 * Hazard (kernel 6.18, seen inside containers, e.g. the fresh-machine test): the kernel refuses to
 * bind a mount namespace's file (EINVAL, "mount /proc/N/ns/mnt on FILE failed: Invalid argument")
 * unless the namespace's id is greater than the binding process's own namespace's id, and ids come
 * from per-CPU batches: a namespace made on another CPU than the caller's own one can get a smaller
 * id. The initial namespace (ours on a plain host) has the smallest id, so only nested callers hit
 * it, then for every attempt on the unlucky CPU. A failed bind leaves nothing behind (unshare stops
 * before the script), so the call is retried pinned to each CPU in turn: on the CPU that made the
 * caller's namespace, ids only grow.
 */
async function persistMountNamespace(l: HostLayout, script: string): Promise<void> {
  const cmd = ['nsenter', `--net=/run/netns/${l.netns}`, 'unshare', `--mount=${l.mntFile}`, '--propagation', 'private', 'sh', '-c', script];
  let r = await run(cmd[0] as string, cmd.slice(1));
  const cpus = os.cpus().length;
  for (let cpu = 0; r.code !== 0 && BIND_REFUSED.test(r.stderr) && cpu < cpus; cpu++) {
    r = await run('taskset', ['-c', String(cpu), ...cmd]);
  }
  if (r.code !== 0) throw new Error(`${cmd.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
}

export async function attachUnderlay(l: HostLayout, u: UnderlayLink): Promise<void> {
  const peer = `u${l.name}`;
  await runOk('ip', ['-n', l.netns, 'link', 'add', 'underlay0', 'type', 'veth', 'peer', 'name', peer, 'netns', u.netns]);
  const mtu = String(u.mtu ?? 1500);
  await runOk('ip', ['-n', l.netns, 'link', 'set', 'underlay0', 'mtu', mtu, 'up']);
  await runOk('ip', ['-n', l.netns, 'addr', 'add', u.cidr, 'dev', 'underlay0']);
  await runOk('ip', ['-n', u.netns, 'link', 'set', peer, 'mtu', mtu, 'master', u.bridge, 'up']);
}

/** Starts a long-running process inside the host's namespaces, detached, output appended to `logFile`; returns its own PID. */
export function spawnInHost(l: HostLayout, cmd: string[], logFile: string, env?: NodeJS.ProcessEnv): number {
  const out = fs.openSync(logFile, 'a');
  const child = spawn('nsenter', [...enterHost(l), ...cmd], {
    detached: true,
    stdio: ['ignore', out, out],
    env: env ?? process.env,
  });
  fs.closeSync(out);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${cmd[0]}`);
  return child.pid;
}

/**
 * Removes the mount namespace handle (and the handle directory's mount once no host uses it)
 * and both network namespaces. Each step runs whatever the others did; failures go to `attempt`.
 */
export async function removeNamespaces(l: HostLayout, attempt: (what: string, fn: () => Promise<unknown>) => Promise<void>): Promise<void> {
  await attempt('unmount namespace', () => run('umount', ['-l', l.mntFile]));
  await attempt('remove namespace file', async () => fs.rmSync(l.mntFile, { force: true }));
  await attempt('release namespace directory', async () => {
    if (fs.readdirSync(MNT_DIR).length === 0) await run('umount', [MNT_DIR]);
  });
  await attempt('delete netns', () => run('ip', ['netns', 'del', l.netns]));
  await attempt('delete outside netns', () => run('ip', ['netns', 'del', l.outNetns]));
}
