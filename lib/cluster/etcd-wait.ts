/**
 * How long each plugin call waited on etcd, for its log line (`etcdMs`) and the fault
 * tests. Accounting only: nothing decides anything from it. The HTTP envelope runs each
 * call inside `inCall`; the guarded store and the deferrable budget time their awaits.
 * A wait that `covers` others (a budget around a claim) is counted once, not with the
 * calls it covers. Background work started from a call may add to the call's record
 * after it answered; that is never logged.
 *
 * Only when the caller asks (`account`: the daemon's plugin server in cluster mode): the first
 * AsyncLocalStorage.run turns on Node's promise hooks for the whole process, a cost on every
 * promise of every call, which a loomd without etcd has no reason to pay.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface Account {
  etcdMs: number;
  covering: number;
}

const current = new AsyncLocalStorage<Account>();

const NOTHING_WAITED = (): number => 0;

/**
 * Runs a plugin call's handler; `waited()` is the etcd time it accumulated. Without `account`
 * the handler runs as it is and nothing is counted (a loomd without etcd).
 */
export function inCall<T>(fn: () => Promise<T>, account: boolean): { result: Promise<T>; waited: () => number } {
  if (!account) return { result: fn(), waited: NOTHING_WAITED };
  const record: Account = { etcdMs: 0, covering: 0 };
  return { result: current.run(record, fn), waited: () => record.etcdMs };
}

export async function timedEtcdWait<T>(fn: () => Promise<T>, covers = false): Promise<T> {
  const account = current.getStore();
  if (!account || (account.covering > 0 && !covers)) return fn();
  const started = performance.now();
  if (covers) account.covering++;
  try {
    return await fn();
  } finally {
    if (covers) account.covering--;
    account.etcdMs += performance.now() - started;
  }
}
