import { BackgroundWork } from '../../driver/network/background-work';
import { silentLogger } from '../../lib/logger';

const deferred = (): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } => {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};

test('settle waits for the pending teardowns of one network, not of others', async () => {
  const t = new BackgroundWork(silentLogger());
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
  const t = new BackgroundWork(log);
  t.start('net-a', 'remove veth pair of endpoint x', () => Promise.reject(new Error('EBUSY')));
  await t.settle('net-a');
  expect(warnings).toEqual(['remove veth pair of endpoint x failed after the answer (the reconciler removes what is left)']);
  expect(t.size).toBe(0);
  await t.settle('unknown-network');
});

test('a pair made after the answer: made() waits for it, says whether it succeeded, once; settle waits for it too', async () => {
  const warnings: string[] = [];
  const log = { ...silentLogger(), warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as ReturnType<typeof silentLogger>;
  const t = new BackgroundWork(log);
  const ok = deferred();
  t.startMaking('net-a', 'ep-1', 'create endpoint ep-1', () => ok.promise);
  t.startMaking('net-a', 'ep-2', 'create endpoint ep-2', () => Promise.reject(new Error('EEXIST')));
  expect(t.size).toBe(2);
  let settled = false;
  const s = t.settle('net-a').then(() => (settled = true));
  let made: boolean | undefined;
  const m = t.made('ep-1').then((r) => (made = r));
  await Promise.resolve();
  expect(made).toBeUndefined();
  expect(settled).toBe(false);
  ok.resolve();
  await m;
  expect(made).toBe(true);
  await s;
  expect(t.size).toBe(0);
  // Asked once: a later Join sees the kernel as it is (made() false: nothing pending).
  expect(await t.made('ep-1')).toBe(false);
  // A failed creation is logged, never thrown; Join makes the pair itself.
  expect(await t.made('ep-2')).toBe(false);
  expect(warnings).toEqual(['create endpoint ep-2 failed after the answer (Join makes it again or reports why)']);
  expect(await t.made('never-made')).toBe(false);
});

test('work for one endpoint id runs in order: a pair made again under the id of an endpoint still being torn down waits for that teardown; a teardown ends what Join was to wait for', async () => {
  const t = new BackgroundWork(silentLogger());
  const order: string[] = [];
  const teardown = deferred();
  t.start('net-a', 'remove veth pair of endpoint x', () => teardown.promise.then(() => void order.push('teardown 1')), 'ep-x');
  t.startMaking('net-a', 'ep-x', 'create endpoint x', async () => void order.push('made 2'));
  // Another endpoint's work does not wait.
  t.startMaking('net-a', 'ep-y', 'create endpoint y', async () => void order.push('made y'));
  let made: boolean | undefined;
  const m = t.made('ep-x').then((r) => (made = r));
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual(['made y']);
  expect(made).toBeUndefined();
  teardown.resolve();
  await m;
  expect(made).toBe(true);
  expect(order).toEqual(['made y', 'teardown 1', 'made 2']);
  // Deleted before Join: the teardown runs after the making, and nothing is left to wait for.
  const making = deferred();
  t.startMaking('net-a', 'ep-z', 'create endpoint z', () => making.promise.then(() => void order.push('made z')));
  t.start('net-a', 'remove veth pair of endpoint z', async () => void order.push('teardown z'), 'ep-z');
  expect(await t.made('ep-z')).toBe(false);
  making.resolve();
  await t.settle();
  expect(order.slice(-2)).toEqual(['made z', 'teardown z']);
  expect(t.size).toBe(0);
});
