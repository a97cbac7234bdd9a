/**
 * The per-call account of time spent waiting on etcd (logged as etcdMs): waits inside a
 * call add up, a covering wait (a budget) counts once with what it covers, and nothing is
 * counted outside a call or when the call is not accounted (a loomd without etcd).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { inCall, timedEtcdWait } from '../../lib/cluster/etcd-wait';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a call not accounted (no cluster mode) runs without AsyncLocalStorage (no promise hooks for the process) and counts nothing', async () => {
  const run = jest.spyOn(AsyncLocalStorage.prototype, 'run');
  try {
    const call = inCall(async () => {
      await timedEtcdWait(() => sleep(5));
      return 'done';
    }, false);
    expect(await call.result).toBe('done');
    expect(call.waited()).toBe(0);
    expect(run).not.toHaveBeenCalled();
  } finally {
    run.mockRestore();
  }
});

test('waits inside an accounted call add up; a covering wait counts once', async () => {
  const call = inCall(async () => {
    await timedEtcdWait(() => sleep(30));
    await timedEtcdWait(() => timedEtcdWait(() => sleep(40)), true);
    return 'done';
  }, true);
  expect(await call.result).toBe('done');
  expect(call.waited()).toBeGreaterThanOrEqual(65);
  expect(call.waited()).toBeLessThan(150);
});

test('outside a call nothing is counted and the work still runs', async () => {
  expect(await timedEtcdWait(async () => 7)).toBe(7);
  const call = inCall(async () => 1, true);
  await call.result;
  expect(call.waited()).toBe(0);
});
