/**
 * The kernel side of a container's resolver (service discovery): sockets on Docker's resolver
 * address inside the container's network namespace, and the nft table there that steers the
 * container's DNS queries to them.
 *
 * - Sockets: `nsenter --net=<netns> node dns-socket-helper.js 127.0.0.11` binds a UDP socket and
 *   a TCP listener with kernel-chosen ports in that namespace and hands both to loomd over the
 *   IPC channel (SCM_RIGHTS), then exits. They answer only inside that namespace: the resolver
 *   is unreachable from anywhere else (not an open resolver).
 * - Rule: `table ip loom_dns` (loom's own, replaced whole, atomically) DNATs queries to
 *   127.0.0.11:53 to loomd's ports at nat output priority -105, before Docker's own DNAT (-100).
 *   loomd's relayed queries (UDP source port = its port) pass on to Docker's resolver.
 * The namespace file is opened once (netns-file.ts checks) and used as /proc/<pid>/fd/<n>.
 */
import { spawn } from 'node:child_process';
import type * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { unavailable } from '../../lib/errors';
import { runChecked, runCommand } from './command';
import { isNetnsFile, openNetnsFile } from './netns-file';
import { helperScript } from './helper-scripts';

export const DOCKER_RESOLVER = '127.0.0.11';
export const RESOLVER_TABLE = 'loom_dns';
const HELPER_TIMEOUT_MS = 10_000;

export interface ResolverSockets {
  udp: dgram.Socket;
  tcp: net.Server;
  udpPort: number;
  tcpPort: number;
}

const helperPath = (): string => helperScript('dns-socket-helper.js');

/** The nft script that installs (or replaces) the steering table (pure). */
export function resolverRule(udpPort: number, tcpPort: number): string {
  return [
    `table ip ${RESOLVER_TABLE}`,
    `delete table ip ${RESOLVER_TABLE}`,
    `table ip ${RESOLVER_TABLE} {`,
    '\tchain output {',
    '\t\ttype nat hook output priority -105; policy accept;',
    `\t\tip daddr ${DOCKER_RESOLVER} udp dport 53 udp sport != ${udpPort} dnat to ${DOCKER_RESOLVER}:${udpPort}`,
    `\t\tip daddr ${DOCKER_RESOLVER} tcp dport 53 dnat to ${DOCKER_RESOLVER}:${tcpPort}`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** Runs `fn` with the namespace as a path only this process's descriptor names. */
async function inNetns<T>(sandboxKey: string, fn: (ref: string) => Promise<T>): Promise<T> {
  const fd = openNetnsFile(sandboxKey);
  try {
    return await fn(`/proc/${process.pid}/fd/${fd}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Binds the resolver's sockets inside the container's namespace (the helper, see above). */
export function openResolverSockets(sandboxKey: string): Promise<ResolverSockets> {
  return inNetns(sandboxKey, (ref) => new Promise<ResolverSockets>((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${ref}`, '--', process.execPath, helperPath(), DOCKER_RESOLVER], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 500)));
    const got: Partial<ResolverSockets> = {};
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    child.on('message', (m: { kind?: string; port?: number }, handle: unknown) => {
      if (m.kind === 'udp') Object.assign(got, { udp: handle as dgram.Socket, udpPort: m.port });
      if (m.kind === 'tcp') Object.assign(got, { tcp: handle as net.Server, tcpPort: m.port });
      if (got.udp && got.tcp) child.send('ok');
    });
    child.on('error', (err) => reject(unavailable(`dns socket helper: ${err.message}`)));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (got.udp && got.tcp && code === 0) return resolve(got as ResolverSockets);
      got.udp?.close();
      got.tcp?.close();
      reject(unavailable(`dns socket helper in ${sandboxKey} exited ${code}: ${stderr.trim()}`));
    });
  }));
}

/** Installs (or replaces) the steering table in the container's namespace. */
export function installResolverRule(sandboxKey: string, udpPort: number, tcpPort: number): Promise<void> {
  return inNetns(sandboxKey, async (ref) => {
    await runChecked(runCommand, 'nsenter', [`--net=${ref}`, '--', 'nft', '-f', '-'], resolverRule(udpPort, tcpPort));
  });
}

/** Removes the steering table (idempotent: absent is fine). */
export function removeResolverRule(sandboxKey: string): Promise<void> {
  return inNetns(sandboxKey, async (ref) => {
    await runChecked(runCommand, 'nsenter', [`--net=${ref}`, '--', 'nft', '-f', '-'], `table ip ${RESOLVER_TABLE}\ndelete table ip ${RESOLVER_TABLE}\n`);
  });
}

/** True when the container's namespace holds the steering table pointing at these ports (drift check). */
export function hasResolverRule(sandboxKey: string, udpPort: number, tcpPort: number): Promise<boolean> {
  return inNetns(sandboxKey, async (ref) => {
    const r = await runCommand('nsenter', [`--net=${ref}`, '--', 'nft', 'list', 'table', 'ip', RESOLVER_TABLE]);
    return r.code === 0 && r.stdout.includes(`dnat to ${DOCKER_RESOLVER}:${udpPort}`) && r.stdout.includes(`dnat to ${DOCKER_RESOLVER}:${tcpPort}`);
  });
}

/**
 * Whether a SandboxKey holds a network namespace yet: at Join the file may be missing or
 * empty, Docker binds the namespace on it when the container starts (SetKey).
 */
export function sandboxState(sandboxKey: string): 'ready' | 'pending' | 'missing' {
  if (isNetnsFile(sandboxKey)) return 'ready';
  return fs.existsSync(sandboxKey) ? 'pending' : 'missing';
}
