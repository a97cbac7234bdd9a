/**
 * The reaper: what test runs killed before their clean-up (SIGKILL, a CI timeout) left behind,
 * and the processes a host's engine leaves behind. Only what an owner stamp (owner.ts) proves
 * abandoned, or what runs in a host's own namespace or directory, is ever removed or signalled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidAlive, run, statFields, waitGone } from '../run';
import { ownerAlive } from '../owner';
import { HostLayout, hostLayout, ROOT } from './layout';

const HOST_DIR = /^[0-9a-f]{6}$/;
const CLUSTER_STAMP = /^cluster-(loomt-u[0-9a-f]{4})\.owner$/;

/** The owner stamp of a cluster's underlay namespace (the hosts carry their own). */
export function clusterOwnerFile(underlayNs: string): string {
  return path.join(ROOT, `cluster-${underlayNs}.owner`);
}

let swept: Promise<void> | undefined;

/**
 * Removes (once per test process) hosts whose owner stamp names a process that is gone, with
 * `destroyHost`, and the underlay namespaces of such clusters. Hosts of live runs and anything
 * without an owner stamp are left alone.
 */
export function sweepAbandoned(destroyHost: (name: string) => Promise<void>): Promise<void> {
  swept ??= (async () => {
    if (!fs.existsSync(ROOT)) return;
    for (const entry of fs.readdirSync(ROOT)) {
      const host = HOST_DIR.test(entry) ? hostLayout(entry) : undefined;
      const underlay = CLUSTER_STAMP.exec(entry)?.[1];
      const stampFile = host ? host.ownerFile : underlay ? clusterOwnerFile(underlay) : undefined;
      if (!stampFile || !fs.existsSync(stampFile) || ownerAlive(fs.readFileSync(stampFile, 'utf8'))) continue;
      if (host) {
        console.warn(`removing test host ${entry}, left behind by a test run that was killed`);
        await destroyHost(entry);
      } else if (underlay) {
        console.warn(`removing underlay namespace ${underlay}, left behind by a test run that was killed`);
        await run('ip', ['netns', 'del', underlay]);
        fs.rmSync(stampFile, { force: true });
      }
    }
  })();
  return swept;
}

/**
 * Processes a host's engine left behind (containerd, shims and the containers under them, e.g.
 * after a test failed while dockerd was down or ran with --live-restore): every process whose
 * command line names the host's private directory or that runs in the host's network
 * namespace (loomd, etcd), and all their descendants.
 */
export function leftoverPids(l: HostLayout): number[] {
  const marker = `${l.dir}/`;
  let ns: fs.Stats | undefined;
  try {
    ns = fs.statSync(`/run/netns/${l.netns}`);
  } catch {
    ns = undefined;
  }
  const children = new Map<number, number[]>();
  const roots: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const ppid = Number(statFields(pid)?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
      const inNetns = ns !== undefined && ((st) => st.ino === ns.ino && st.dev === ns.dev)(fs.statSync(`/proc/${pid}/ns/net`));
      if (inNetns || fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.includes(marker))) roots.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  const out = new Set<number>();
  const visit = (pid: number): void => {
    if (out.has(pid)) return;
    out.add(pid);
    for (const c of children.get(pid) ?? []) visit(c);
  };
  roots.forEach(visit);
  return [...out].filter(pidAlive);
}

/** SIGKILLs the host's leftover processes (leftoverPids) and waits for them; throws naming them, if there were any. */
export async function killLeftovers(l: HostLayout): Promise<void> {
  const left = leftoverPids(l);
  if (!left.length) return;
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const gone = await waitGone(left, 10_000);
  throw new Error(`killed ${left.length} leftover process(es) of this host${gone ? '' : ' (some still alive)'}: ${left.join(' ')}`);
}
