/** StepRunner rollback, teardownAll, and the setup tables built on them. */
import { LoomError, conflict } from '../../lib/errors';
import { SetupStep, StepRunner, defineStep, runTable, teardownAll } from '../../driver/dataplane/steps';
import { silentLogger } from '../../lib/logger';

async function rejection(p: Promise<unknown>): Promise<LoomError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LoomError);
    return err as LoomError;
  }
  throw new Error('expected a LoomError, the promise resolved');
}

describe('StepRunner', () => {
  test('completed steps are undone newest first when a later step fails; the error names the step', async () => {
    const log: string[] = [];
    const s = new StepRunner('create network n1', silentLogger());
    await s.step('bridge', async () => {
      log.push('do bridge');
      return async () => log.push('undo bridge');
    });
    await s.step('no-inverse', async () => {
      log.push('do no-inverse');
    });
    await s.step('address', async () => {
      log.push('do address');
      return async () => log.push('undo address');
    });
    const err = await rejection(
      s.step('up', async () => {
        log.push('do up');
        throw conflict('EEXIST');
      }),
    );
    expect(err.message).toBe('create network n1: up: EEXIST');
    expect(err.kind).toBe('conflict');
    expect(log).toEqual(['do bridge', 'do no-inverse', 'do address', 'do up', 'undo address', 'undo bridge']);
  });

  test('a failing undo does not stop the rollback; the original error is thrown', async () => {
    const log: string[] = [];
    const s = new StepRunner('join', silentLogger());
    await s.step('one', async () => async () => log.push('undo one'));
    await s.step('two', async () => async () => {
      throw new Error('undo two broke');
    });
    await s.step('three', async () => async () => log.push('undo three'));
    const err = await rejection(
      s.step('four', async () => {
        throw new Error('boom');
      }),
    );
    expect(err.message).toBe('join: four: boom');
    expect(err.kind).toBe('internal');
    expect(log).toEqual(['undo three', 'undo one']);
  });

  test('non-Error throws are wrapped too', async () => {
    const s = new StepRunner('w', silentLogger());
    const err = await rejection(
      s.step('x', async () => {
        throw 'plain string'; // eslint-disable-line no-throw-literal
      }),
    );
    expect(err.message).toBe('w: x: plain string');
  });

  test('rollback() undoes everything once and reports undo errors', async () => {
    const log: string[] = [];
    const s = new StepRunner('x', silentLogger());
    await s.step('a', async () => async () => log.push('undo a'));
    await s.step('b', async () => async () => {
      throw new Error('b failed');
    });
    const errors = await s.rollback();
    expect(errors.map((e) => e.message)).toEqual(['b failed']);
    expect(log).toEqual(['undo a']);
    expect(await s.rollback()).toEqual([]);
    expect(log).toEqual(['undo a']);
  });

  test('a failing first step has nothing to undo', async () => {
    const s = new StepRunner('x', silentLogger());
    const err = await rejection(
      s.step('first', async () => {
        throw new Error('nope');
      }),
    );
    expect(err.message).toBe('x: first: nope');
  });
});

describe('teardownAll', () => {
  test('runs every action in order and resolves when all succeed', async () => {
    const log: string[] = [];
    await teardownAll('delete n1', [
      ['a', async () => log.push('a')],
      ['b', async () => log.push('b')],
    ]);
    expect(log).toEqual(['a', 'b']);
  });

  test('keeps going past failures and reports every one of them', async () => {
    const log: string[] = [];
    const err = await rejection(
      teardownAll('delete n1', [
        [
          'veth',
          async () => {
            throw new Error('ENODEV');
          },
        ],
        ['route', async () => log.push('route')],
        [
          'bridge',
          async () => {
            throw conflict('busy');
          },
        ],
        ['firewall', async () => log.push('firewall')],
      ]),
    );
    expect(log).toEqual(['route', 'firewall']);
    expect(err.message).toBe('delete n1: veth: ENODEV; bridge: busy');
  });

  test('no actions is fine', async () => {
    await expect(teardownAll('nothing', [])).resolves.toBeUndefined();
  });
});

describe('setup tables (defineStep, runTable)', () => {
  interface Ctx {
    log: string[];
    items: string[];
  }
  const table = [
    defineStep<Ctx>({ id: 'a', when: () => true, name: () => 'make a', run: async (c) => c.log.push('do a'), undo: async (c) => c.log.push('undo a') }),
    defineStep<Ctx>({ id: 'skipped', when: () => false, name: () => 'never', run: async (c) => c.log.push('never') }),
    defineStep<Ctx, string>({ id: 'each', each: (c) => c.items, when: (_c, i) => i !== 'y', name: (_c, i) => `item ${i}`, run: async (c, i) => c.log.push(`do ${i}`), undo: async (c, i) => c.log.push(`undo ${i}`) }),
  ];

  test('steps run in order when their condition holds, one named step per item', async () => {
    const c: Ctx = { log: [], items: ['x', 'y', 'z'] };
    const names: string[] = [];
    const runner = new (class extends StepRunner {
      override step(name: string, fn: () => Promise<(() => Promise<unknown>) | void>): Promise<void> {
        names.push(name);
        return super.step(name, fn);
      }
    })('t', silentLogger());
    await runTable(table, c, runner);
    expect(names).toEqual(['make a', 'item x', 'item z']);
    expect(c.log).toEqual(['do a', 'do x', 'do z']);
    await runner.rollback();
    expect(c.log.slice(3)).toEqual(['undo z', 'undo x', 'undo a']);
    expect(table.map((s) => s.reversible)).toEqual([true, false, true]);
  });

  test('a condition that throws fails its step: what ran before is rolled back, the error names the step', async () => {
    const c: Ctx = { log: [], items: [] };
    const failing = defineStep<Ctx>({ id: 'f', when: () => Promise.reject(new Error('netlink timeout')), name: () => 'check f', run: async () => undefined });
    const err = await rejection(runTable([table[0] as SetupStep<Ctx>, failing], c, new StepRunner('t', silentLogger())));
    expect(err.message).toBe('t: check f: netlink timeout');
    expect(c.log).toEqual(['do a', 'undo a']);
  });
});
