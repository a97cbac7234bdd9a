/** GroupCommit: concurrent batches share one write; failures fail exactly their own callers. */
import { GroupCommit } from '../../driver/store/group-commit';

type Op = { key: string; value: number };

/** A writer whose writes complete only when the test says so. */
function manualWriter() {
  const writes: Array<{ ops: Op[]; durable: boolean; done: (err?: Error) => void }> = [];
  const write = (ops: Op[], durable: boolean): Promise<void> =>
    new Promise((resolve, reject) => writes.push({ ops, durable, done: (err) => (err ? reject(err) : resolve()) }));
  return { writes, write };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** After a write completes, the next group is taken one macrotask later (callers answered may submit again first). */
const afterWrite = async (): Promise<void> => {
  await tick();
  await tick();
};

describe('GroupCommit', () => {
  test('a group of batches that need no sync is written without one; one durable batch makes the group durable', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    const a = g.submit([{ key: 'a', value: 1 }], false);
    await tick();
    expect(w.writes[0]?.durable).toBe(false);
    const b = g.submit([{ key: 'b', value: 1 }], false);
    const c = g.submit([{ key: 'c', value: 1 }]);
    w.writes[0]?.done();
    await a;
    await tick();
    expect(w.writes[1]).toMatchObject({ ops: [{ key: 'b', value: 1 }, { key: 'c', value: 1 }], durable: true });
    w.writes[1]?.done();
    await Promise.all([b, c]);
    const d = g.submit([{ key: 'd', value: 1 }]);
    await tick();
    expect(w.writes[2]?.durable).toBe(true);
    w.writes[2]?.done();
    await d;
  });

  test('an idle queue writes a lone batch at once', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    const p = g.submit([{ key: 'a', value: 1 }]);
    await tick();
    expect(w.writes.map((x) => x.ops)).toEqual([[{ key: 'a', value: 1 }]]);
    w.writes[0]?.done();
    await expect(p).resolves.toBeUndefined();
    expect(g.stats).toEqual({ writes: 1, batches: 1, failures: 0, maxGroup: 1 });
  });

  test('batches queued while a write is in flight go out together, in arrival order', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    const settled: string[] = [];
    const track = (name: string, p: Promise<void>) => p.then(() => settled.push(name));
    const a = track('a', g.submit([{ key: 'x', value: 1 }]));
    await tick();
    const b = track('b', g.submit([{ key: 'x', value: 2 }, { key: 'y', value: 2 }]));
    const c = track('c', g.submit([{ key: 'x', value: 3 }]));
    await tick();
    expect(w.writes).toHaveLength(1); // b and c wait for a's write
    expect(settled).toEqual([]);
    w.writes[0]?.done();
    await a;
    await tick();
    expect(w.writes).toHaveLength(2);
    // The last op on x is c's: applied in order, the key ends as it would one batch after another.
    expect(w.writes[1]?.ops).toEqual([{ key: 'x', value: 2 }, { key: 'y', value: 2 }, { key: 'x', value: 3 }]);
    expect(settled).toEqual(['a']); // b and c are not answered before their own write
    w.writes[1]?.done();
    await Promise.all([b, c]);
    expect(g.stats).toMatchObject({ writes: 2, batches: 3, maxGroup: 2 });
  });

  test('a failed write fails exactly its callers; the next group is written afresh', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    const a = g.submit([{ key: 'a', value: 1 }]);
    await tick();
    const b = g.submit([{ key: 'b', value: 1 }]);
    const c = g.submit([{ key: 'c', value: 1 }]);
    w.writes[0]?.done(new Error('ENOSPC'));
    await expect(a).rejects.toThrow('ENOSPC');
    await tick();
    w.writes[1]?.done(new Error('EIO'));
    await expect(b).rejects.toThrow('EIO');
    await expect(c).rejects.toThrow('EIO');
    const d = g.submit([{ key: 'd', value: 1 }]);
    await tick();
    w.writes[2]?.done();
    await expect(d).resolves.toBeUndefined();
    expect(g.stats).toMatchObject({ writes: 3, batches: 4, failures: 2 });
  });

  test('a group holds at most maxOps ops; a larger single batch goes alone', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write, 3);
    const ops = (n: number, k: string) => Array.from({ length: n }, (_, i) => ({ key: `${k}${i}`, value: i }));
    const all = [g.submit(ops(1, 'a')), g.submit(ops(2, 'b')), g.submit(ops(2, 'c')), g.submit(ops(5, 'd')), g.submit(ops(1, 'e'))];
    for (let i = 0; i < 5; i++) {
      await afterWrite();
      w.writes[i]?.done();
    }
    await Promise.all(all);
    expect(w.writes.map((x) => x.ops.length)).toEqual([1, 2, 2, 5, 1]);
  });

  test('callers answered by a write and submitting again at once join the batches queued during it', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    // 4 callers, each submitting its next batch as soon as the previous one is written (a busy pool).
    const loop = async (k: string) => {
      for (let i = 0; i < 3; i++) await g.submit([{ key: k, value: i }]);
    };
    const all = Promise.all(['a', 'b', 'c', 'd'].map(loop));
    for (let done = 0; done < 4; done++) {
      await afterWrite();
      w.writes[done]?.done();
    }
    await all;
    // a alone (the queue was idle), then b c d (queued during a's write) with a's next, never a lone batch again.
    expect(w.writes.map((x) => x.ops.map((o) => o.key).join(''))).toEqual(['a', 'bcda', 'bcda', 'bcd']);
    expect(g.stats).toMatchObject({ writes: 4, batches: 12, maxGroup: 4 });
  });

  test('flushed() waits for every batch submitted so far', async () => {
    const w = manualWriter();
    const g = new GroupCommit<Op>(w.write);
    void g.submit([{ key: 'a', value: 1 }]);
    void g.submit([{ key: 'b', value: 1 }]);
    let flushed = false;
    const f = g.flushed().then(() => (flushed = true));
    await tick();
    w.writes[0]?.done();
    await afterWrite();
    expect(flushed).toBe(false);
    w.writes[1]?.done();
    await f;
    expect(flushed).toBe(true);
  });
});
