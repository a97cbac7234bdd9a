/**
 * The per-call account of time spent waiting on etcd (logged as etcdMs): waits inside a
 * call add up, a covering wait (a budget) counts once with what it covers, and nothing is
 * counted outside a call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { accountEtcdWaits, inCall, timedEtcdWait } from '../../lib/cluster/etcd-wait';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('before cluster mode asks for it, calls are not accounted (no AsyncLocalStorage: no promise hooks for the process)', async () => {
  const run = jest.spyOn(AsyncLocalStorage.prototype, 'run');
  try {
    const call = inCall(async () => {
      await timedEtcdWait(() => sleep(5));
      return 'done';
    });
    expect(await call.result).toBe('done');
    expect(call.waited()).toBe(0);
    expect(run).not.toHaveBeenCalled();
  } finally {
    run.mockRestore();
    accountEtcdWaits(); // (the tests below are cluster mode's)
  }
});

test('waits inside a call add up; a covering wait counts once', async () => {
  const call = inCall(async () => {
    await timedEtcdWait(() => sleep(30));
    await timedEtcdWait(() => timedEtcdWait(() => sleep(40)), true);
    return 'done';
  });
  expect(await call.result).toBe('done');
  expect(call.waited()).toBeGreaterThanOrEqual(65);
  expect(call.waited()).toBeLessThan(150);
});

test('outside a call nothing is counted and the work still runs', async () => {
  expect(await timedEtcdWait(async () => 7)).toBe(7);
  const call = inCall(async () => 1);
  await call.result;
  expect(call.waited()).toBe(0);
});
