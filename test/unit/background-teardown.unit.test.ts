import { BackgroundTeardown } from '../../driver/network/background-teardown';
import { silentLogger } from '../../lib/logger';

const deferred = (): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } => {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};

test('settle waits for the pending teardowns of one network, not of others', async () => {
  const t = new BackgroundTeardown(silentLogger());
  const a = deferred();
  const b = deferred();
  t.start('net-a', 'a', () => a.promise);
  t.start('net-b', 'b', () => b.promise);
  expect(t.size).toBe(2);
  let settledA = false;
  const s = t.settle('net-a').then(() => (settledA = true));
  await Promise.resolve();
  expect(settledA).toBe(false);
  a.resolve();
  await s;
  expect(settledA).toBe(true);
  expect(t.size).toBe(1);
  b.resolve();
  await t.settle();
  expect(t.size).toBe(0);
});

test('a failed teardown is logged, never thrown, and does not block settle', async () => {
  const warnings: string[] = [];
  const log = { ...silentLogger(), warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as ReturnType<typeof silentLogger>;
  const t = new BackgroundTeardown(log);
  t.start('net-a', 'remove veth pair of endpoint x', () => Promise.reject(new Error('EBUSY')));
  await t.settle('net-a');
  expect(warnings).toEqual(['remove veth pair of endpoint x failed after the answer (the reconciler removes what is left)']);
  expect(t.size).toBe(0);
  await t.settle('unknown-network');
});
