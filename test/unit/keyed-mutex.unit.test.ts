/** KeyedMutex: serialization per key, parallelism across keys, no leaked entries. */
import { KeyedMutex } from '../../lib/keyed-mutex';

/** A promise with its resolver, to hold a critical section open. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('KeyedMutex', () => {
  test('the same key is serialized, in arrival order', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    let inside = 0;
    let maxInside = 0;
    const work = (name: string) =>
      m.run('k', async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        log.push(`start ${name}`);
        await tick();
        await tick();
        log.push(`end ${name}`);
        inside--;
        return name;
      });
    const results = await Promise.all([work('a'), work('b'), work('c')]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(maxInside).toBe(1);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(m.size).toBe(0);
  });

  test('different keys run concurrently', async () => {
    const m = new KeyedMutex();
    const g = gate();
    const log: string[] = [];
    const held = m.run('a', async () => {
      log.push('a in');
      await g.wait;
      log.push('a out');
    });
    // 'b' completes while 'a' is still held.
    await m.run('b', async () => log.push('b'));
    expect(log).toEqual(['a in', 'b']);
    expect(m.size).toBe(1);
    g.open();
    await held;
    expect(log).toEqual(['a in', 'b', 'a out']);
    expect(m.size).toBe(0);
  });

  test('size counts held and awaited keys and shrinks back to 0', async () => {
    const m = new KeyedMutex();
    const g = gate();
    const runs = [m.run('x', () => g.wait), m.run('x', async () => 1), m.run('y', () => g.wait), m.run('z', () => g.wait)];
    await tick();
    expect(m.size).toBe(3);
    g.open();
    await Promise.all(runs);
    expect(m.size).toBe(0);
  });

  test('a rejection releases the key and propagates; the next holder runs', async () => {
    const m = new KeyedMutex();
    const failing = m.run('k', async () => {
      throw new Error('inner failure');
    });
    const next = m.run('k', async () => 'next ran');
    await expect(failing).rejects.toThrow('inner failure');
    await expect(next).resolves.toBe('next ran');
    expect(m.size).toBe(0);
  });

  test('many keys ever seen leave no entries behind', async () => {
    const m = new KeyedMutex();
    await Promise.all(Array.from({ length: 1000 }, (_, i) => m.run(`net-${i % 37}`, async () => i)));
    expect(m.size).toBe(0);
  });
});
