/**
 * Cluster IPAM on a simulated cluster (cluster-sim.ts): block size recorded with the
 * pool's claim, borrowing single addresses from other hosts' blocks when no block is
 * left, loans given back into the owner's quarantine, owners that are gone or silent,
 * and the resync after a SIGKILL on either side of a loan.
 */
import { keys } from '../../lib/cluster/store';
import { QUARANTINE_MS } from '../../ipam-driver/shared-holds';
import { ClusterSim, SimHost } from './cluster-sim';

const blockKeys = (sim: ClusterSim, subnet: string): string[] => sim.keysUnder(keys.blocksOf(subnet)).map((k) => k.slice(k.lastIndexOf('/') + 1));
const ownerOf = (sim: ClusterSim, subnet: string, block: string): string | undefined => {
  const e = sim.cluster.data.get(keys.block(subnet, block));
  return e ? (JSON.parse(e.value) as { host: string }).host : undefined;
};

/** Lets queued watch deliveries and their handlers run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

async function cluster(subnet: string, hosts = 3): Promise<{ sim: ClusterSim; h: SimHost[] }> {
  const sim = new ClusterSim({ subnet, hosts });
  await sim.setUp();
  return { sim, h: sim.hosts };
}

/** Runs `fn` with Date.now() moved `ms` ahead (quarantines end). */
async function later<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const spy = jest.spyOn(Date, 'now').mockReturnValue(now + ms);
  try {
    return await fn();
  } finally {
    spy.mockRestore();
  }
}

describe('block size', () => {
  test('recorded with the subnet claim; every host uses it (/24 -> 16 blocks of /28)', async () => {
    const { sim, h } = await cluster('198.18.72.0/24');
    const claim = JSON.parse(sim.cluster.data.get(keys.pool('198.18.72.0/24'))?.value as string) as { blockLen: number };
    expect(claim.blockLen).toBe(28);
    for (const x of h) for (let i = 0; i < 3; i++) await x.alloc();
    expect(blockKeys(sim, '198.18.72.0/24').sort()).toEqual(['198.18.72.0', '198.18.72.16', '198.18.72.32']);
  });

  test('a claim without a recorded length (an older loom) keeps /26 blocks after an upgrade', async () => {
    const sim = new ClusterSim({ subnet: '198.18.73.0/24', hosts: 2 });
    // The overlay's claim as an older loom wrote it.
    sim.cluster.write(keys.pool('198.18.73.0/24'), { subnet: '198.18.73.0/24', kind: 'overlay', host: 'old', overlay: 'ov', at: 'x' }, undefined);
    for (const x of sim.hosts) await x.boot();
    for (const x of sim.hosts) {
      x.poolId = (await x.ipam.requestPool({ addressSpace: 'LoomLocal', pool: '198.18.73.0/24', subPool: '', options: {}, v6: false })).poolId;
      await x.ipam.requestAddress({ poolId: x.poolId, address: '', options: { RequestAddressType: 'com.docker.network.gateway' } });
      await x.alloc();
    }
    expect(blockKeys(sim, '198.18.73.0/24').sort()).toEqual(['198.18.73.0', '198.18.73.64']);
  });
});

describe('borrowing', () => {
  test('a /26 over 3 hosts: 10 containers on each, then filled to its 61 addresses, all distinct', async () => {
    const { sim, h } = await cluster('198.18.74.0/26');
    const got: string[] = [];
    for (const x of h) for (let i = 0; i < 10; i++) got.push(await x.alloc());
    // The rest on A alone: once every block is claimed, A borrows from B's and C's blocks.
    while (got.length < 61) got.push(await (h[0] as SimHost).alloc());
    expect(new Set(got).size).toBe(61);
    expect(got).not.toContain('198.18.74.1');
    expect(sim.duplicates()).toEqual([]);
    const borrowed = h.flatMap((x) => x.persisted().filter((a) => a.kind === 'borrowed'));
    expect(borrowed.length).toBeGreaterThan(0);
    // Nothing left anywhere: a clear error that says why.
    await expect((h[0] as SimHost).alloc()).rejects.toMatchObject({ kind: 'exhausted', message: expect.stringMatching(/no free address left in 198\.18\.74\.0\/26: this host's blocks are full, every block is claimed, and no other host could lend one \(h2: none free; h3: none free\)/) });
    expect(sim.keysUnder(keys.loanRequests)).toEqual([]);
  });

  test('a /24 over 3 hosts: 80 containers spread unevenly (60 on one host)', async () => {
    const { sim, h } = await cluster('198.18.75.0/24');
    const got: string[] = [];
    for (let i = 0; i < 80; i++) got.push(await (i < 60 ? (h[0] as SimHost) : (h[1 + (i % 2)] as SimHost)).alloc());
    expect(new Set(got).size).toBe(80);
    expect(sim.duplicates()).toEqual([]);
  });

  test('a /24 over 10 hosts: every host allocates; the last ones borrow', async () => {
    const { sim, h } = await cluster('198.18.76.0/24', 10);
    const got: string[] = [];
    for (let round = 0; round < 25; round++) for (const x of h) got.push(await x.alloc());
    expect(new Set(got).size).toBe(250);
    expect(h.flatMap((x) => x.persisted()).filter((a) => a.kind === 'borrowed').length).toBeGreaterThan(0);
    expect(sim.duplicates()).toEqual([]);
  });

  test('a borrowed address goes back to its owner, which keeps it in quarantine', async () => {
    const { h } = await cluster('198.18.77.0/29', 2); // blocks of 4: .0-.3 and .4-.7
    const [a, b] = h as [SimHost, SimHost];
    const fromA = [await a.alloc(), await a.alloc()]; // .2 .3 (block .0/30; .1 is the gateway)
    const fromB = [await b.alloc(), await b.alloc(), await b.alloc()]; // .4 .5 .6 (block .4/30; .7 is the broadcast)
    expect([...fromA, ...fromB].sort()).toEqual(['198.18.77.2', '198.18.77.3', '198.18.77.4', '198.18.77.5', '198.18.77.6']);
    await a.release('198.18.77.2'); // quarantined on A
    await expect(b.alloc()).rejects.toMatchObject({ kind: 'exhausted' });
    const lent = await later(QUARANTINE_MS + 1, () => b.alloc());
    expect(lent).toBe('198.18.77.2');
    expect(b.persisted().find((x) => x.address === lent)).toMatchObject({ kind: 'borrowed', peer: 'h1' });
    expect(a.persisted().find((x) => x.address === lent)).toMatchObject({ kind: 'foreign', peer: 'h2', lent: true });
    // A's own next-fit never hands it out while B holds it.
    await expect(later(QUARANTINE_MS + 1, () => a.alloc())).rejects.toMatchObject({ kind: 'exhausted' });
    await b.release(lent);
    await settle();
    expect(a.persisted().find((x) => x.address === lent)).toMatchObject({ kind: 'quarantine' });
    await expect(later(1_000, () => a.alloc())).rejects.toMatchObject({ kind: 'exhausted' });
    expect(await later(QUARANTINE_MS * 3, () => a.alloc())).toBe(lent);
  });

  test('an owner whose lease is gone is not asked; a silent owner costs one deadline, not a hang', async () => {
    const { sim, h } = await cluster('198.18.78.0/28', 3); // 4 blocks of 4
    const [a, b, c] = h as [SimHost, SimHost, SimHost];
    await a.alloc(); // A: block .0 (.2 .3)
    await b.alloc(); // B: block .4 (.4-.7)
    await c.alloc(); // C: block .8 (.8-.11)
    for (let i = 0; i < 4; i++) await a.alloc(); // A: .3, then block .12 (.12 .13 .14; .15 is the broadcast)
    expect(blockKeys(sim, '198.18.78.0/28')).toHaveLength(4);
    // C dies for good (lease expired); B hangs (its lease lives, it answers nothing).
    c.kill();
    (b as unknown as { off: Array<() => void> }).off.forEach((f) => f());
    const before = sim.clock;
    const err = await a.alloc().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ kind: 'exhausted', message: expect.stringMatching(/h2: no answer in time; h3: gone \(no lease\)/) });
    expect(sim.clock - before).toBeLessThanOrEqual(2_500);
    expect(sim.keysUnder(keys.loanRequests)).toEqual([]); // the unanswered request was withdrawn
  });
});

describe('restarts mid-borrow: no duplicate, no permanent leak', () => {
  /** A and B on a /29: A fills its block (.2 .3), B's block (.4/30) has .5 and .6 free; A borrows from B. */
  async function lendingPair(): Promise<{ sim: ClusterSim; a: SimHost; b: SimHost }> {
    const { sim, h } = await cluster('198.18.79.0/29', 2);
    const [a, b] = h as [SimHost, SimHost];
    await a.alloc();
    await a.alloc();
    expect(await b.alloc()).toBe('198.18.79.4');
    return { sim, a, b };
  }
  const reserved = (sim: ClusterSim): string[] => sim.keysUnder(keys.reservations).map((k) => k.slice(k.lastIndexOf('/') + 1));

  test('the borrower dies after the owner granted: its restart resync gives the loan back', async () => {
    const { sim, a, b } = await lendingPair();
    // A asks, B grants, A dies before recording the address.
    const ask = a.alloc();
    const granted = (): boolean => sim.keysUnder(keys.reservations).length > 0;
    for (let i = 0; i < 100 && !granted(); i++) await settle();
    expect(reserved(sim)).toEqual(['198.18.79.5']);
    a.kill();
    await expect(ask).rejects.toThrow();
    expect(a.inUse()).toHaveLength(2);
    await a.boot();
    const counts = { ...(await a.ipam.resyncShared()), ...(await a.ipam.resyncShared()) };
    expect(counts).toEqual({ 'ipam-reservation-released': 1 });
    await settle();
    expect(sim.keysUnder(keys.reservations)).toEqual([]);
    expect(b.persisted().find((x) => x.address === '198.18.79.5')).toMatchObject({ kind: 'quarantine' });
    expect(await b.alloc()).toBe('198.18.79.6');
    expect(await later(QUARANTINE_MS + 1, () => b.alloc())).toBe('198.18.79.5');
    expect(sim.duplicates()).toEqual([]);
  });

  test('the owner dies after holding the address but before granting it: its resync frees the hold', async () => {
    const { sim, a, b } = await lendingPair();
    // B holds .6 for A (persisted), then is killed before its transaction.
    const grant = b.pools.loans.grant.bind(b.pools.loans);
    b.pools.loans.grant = async () => {
      b.kill();
      throw new Error('process killed');
    };
    await expect(a.alloc()).rejects.toMatchObject({ kind: 'exhausted', message: expect.stringMatching(/h2: no answer in time/) });
    b.pools.loans.grant = grant;
    expect(b.persisted().find((x) => x.address === '198.18.79.5')).toMatchObject({ kind: 'foreign', lent: true });
    await b.boot();
    await b.ipam.resyncShared();
    expect(await b.ipam.resyncShared()).toEqual({ 'ipam-foreign-released': 1 });
    expect(b.persisted().find((x) => x.address === '198.18.79.5')).toMatchObject({ kind: 'quarantine' });
    expect(await a.alloc()).toBe('198.18.79.6'); // borrowed, now for real
    expect(sim.duplicates()).toEqual([]);
  });

  test('resyncs while a borrow or a static reservation is in flight leave them alone', async () => {
    const { sim, a, b } = await lendingPair();
    // Two resync passes of A right after B granted the loan, before A recorded it.
    const borrow = a.pools.loans.borrow.bind(a.pools.loans);
    a.pools.loans.borrow = async (...args) => {
      const got = await borrow(...args);
      expect({ ...(await a.ipam.resyncShared()), ...(await a.ipam.resyncShared()) }).toEqual({});
      return got;
    };
    expect(await a.alloc()).toBe('198.18.79.5');
    expect(reserved(sim)).toEqual(['198.18.79.5']);
    // The same for a static address in B's block, granted by B.
    const reserve = a.pools.reserve.bind(a.pools);
    a.pools.reserve = async (...args) => {
      await reserve(...args);
      expect({ ...(await a.ipam.resyncShared()), ...(await a.ipam.resyncShared()) }).toEqual({});
    };
    expect(await a.alloc('198.18.79.6')).toBe('198.18.79.6');
    expect(reserved(sim).sort()).toEqual(['198.18.79.5', '198.18.79.6']);
    expect({ ...(await b.ipam.resyncShared()), ...(await b.ipam.resyncShared()), ...(await a.ipam.resyncShared()) }).toEqual({});
    expect(sim.violations()).toEqual([]);
  });

  test('a loan given back while its owner missed the deletion: the owner\'s resync quarantines it', async () => {
    const { a, b } = await lendingPair();
    const lent = await a.alloc();
    expect(lent).toBe('198.18.79.5');
    b.lose = 1;
    await a.release(lent);
    await settle();
    expect(b.persisted().find((x) => x.address === lent)).toMatchObject({ kind: 'foreign', lent: true });
    expect(await b.ipam.resyncShared()).toEqual({});
    expect(await b.ipam.resyncShared()).toEqual({ 'ipam-foreign-released': 1 });
    expect(b.persisted().find((x) => x.address === lent)).toMatchObject({ kind: 'quarantine' });
  });

  test('a reservation the owner missed (lost watch event) is held by its next resync', async () => {
    const { sim, b } = await lendingPair();
    // A reservation of h1 inside B's block that B never heard of.
    sim.cluster.write(keys.reservation('198.18.79.0/29', '198.18.79.6'), { host: 'h1', state: 'granted', at: 'x' }, undefined);
    expect(await b.ipam.resyncShared()).toEqual({ 'ipam-foreign-held': 1 });
    expect(await b.alloc()).toBe('198.18.79.5');
    await expect(b.alloc()).rejects.toMatchObject({ kind: 'exhausted' });
  });
});

test('the blocks of a host that is gone stay its own: borrowing names it instead of taking them over', async () => {
  const { sim, h } = await cluster('198.18.80.0/30', 2); // a single block
  const [a, b] = h as [SimHost, SimHost];
  expect(await a.alloc()).toBe('198.18.80.2');
  expect(ownerOf(sim, '198.18.80.0/30', '198.18.80.0')).toBe('h1');
  a.kill();
  await expect(b.alloc()).rejects.toMatchObject({ message: expect.stringMatching(/h1: gone \(no lease\)/) });
});
