/**
 * The state store on a real LevelDB in a temporary directory (no root): created only in a new
 * directory, every kind of damage refused with a named error (and refused again at the next
 * open), a failed write undone, snapshots that verify. The same faults against a real loomd
 * are in test/faults/store-damage.faults.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../lib/logger';
import { LevelKv, readCommitMark } from '../../driver/store/level-kv';
import { listSnapshots, readSnapshot, takeSnapshot } from '../../driver/store/snapshot';
import { DAMAGE_FILE, STATE_MARKER, openStateStore } from '../../driver/store/store-integrity';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-store-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const log = silentLogger();
const db = (...p: string[]): string => path.join(dir, 'db', ...p);
const files = (suffix: string): string[] => fs.readdirSync(db()).filter((n) => n.endsWith(suffix));

/** A used state directory: `n` allocations written (one synced batch each), closed. */
async function used(n = 40, compact = false): Promise<void> {
  const { kv } = await openStateStore(dir, log);
  for (let i = 0; i < n; i++) await kv.batch([{ type: 'put', key: `ipam/addr/P|198.18.0.${i}`, value: { i, pad: 'x'.repeat(100) } }]);
  if (compact) await (kv as unknown as { db: { compactRange(a: string, b: string): Promise<void> } }).db.compactRange('\u0000', '\uffff');
  await kv.close();
}

const refusal = async (): Promise<string> => {
  try {
    const { kv } = await openStateStore(dir, log);
    await kv.close();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the store opened');
};

test('a new directory gets a store and a marker; a used one is reopened with its content', async () => {
  const first = await openStateStore(dir, log);
  expect(first.created).toBe(true);
  await first.kv.batch([{ type: 'put', key: 'net/n1', value: { id: 'n1' } }]);
  await first.kv.close();
  expect(fs.existsSync(path.join(dir, STATE_MARKER))).toBe(true);
  const again = await openStateStore(dir, log);
  expect(again.created).toBe(false);
  expect(again.counts).toMatchObject({ networks: 1 });
  expect(again.kv.seq).toBe(1);
  await again.kv.close();
});

test('CURRENT deleted: refused, naming CURRENT and the recovery commands; no empty store is created', async () => {
  await used(40, true);
  const tables = files('.ldb');
  expect(tables.length).toBeGreaterThan(0);
  fs.rmSync(db('CURRENT'));
  const msg = await refusal();
  expect(msg).toMatch(/CURRENT file is missing/);
  expect(msg).toMatch(/no snapshot is available in/);
  expect(msg).toMatch(/loomctl store rebuild/);
  expect(files('.ldb')).toEqual(tables); // LevelDB did not "create" a new store over the old tables
  expect(await refusal()).toMatch(/CURRENT file is missing/);
});

test('a truncated table: refused, naming the file', async () => {
  await used(40, true);
  const t = files('.ldb')[0] as string;
  fs.truncateSync(db(t), Math.floor(fs.statSync(db(t)).size / 2));
  expect(await refusal()).toMatch(new RegExp(`table file ${t} is truncated or corrupt`));
});

test('a truncated write-ahead log: refused (acknowledged writes missing), again at the next start', async () => {
  await used(40);
  const l = files('.log')[0] as string;
  fs.truncateSync(db(l), Math.floor(fs.statSync(db(l)).size / 2));
  const msg = await refusal();
  expect(msg).toMatch(/acknowledged write\(s\) are missing/);
  // LevelDB rewrote the cut log into a table while opening: the damage file keeps the refusal.
  expect(fs.existsSync(path.join(dir, DAMAGE_FILE))).toBe(true);
  expect(await refusal()).toMatch(/acknowledged write\(s\) are missing.*store-damaged\.json stays/);
});

test('a corrupt record in the middle of the log: refused (LevelDB dropped bytes)', async () => {
  await used(40);
  const l = files('.log')[0] as string;
  const b = fs.readFileSync(db(l));
  b[600] = (b[600] as number) ^ 0xff;
  fs.writeFileSync(db(l), b);
  expect(await refusal()).toMatch(/cut part of the store's write-ahead log|acknowledged write/);
});

test('the store directory removed from a used state directory: refused, never recreated empty', async () => {
  await used(5);
  fs.rmSync(db(), { recursive: true });
  expect(await refusal()).toMatch(/is missing or empty/);
});

test('a directory from an older loom (store, no marker) is opened as it is and marked', async () => {
  await used(5);
  fs.rmSync(path.join(dir, STATE_MARKER));
  const s = await openStateStore(dir, log);
  expect(s.created).toBe(false);
  expect(s.counts.allocations).toBe(5);
  await s.kv.close();
  expect(fs.existsSync(path.join(dir, STATE_MARKER))).toBe(true);
});

test('snapshots: consistent, verified, rotated; a damaged one is never listed', async () => {
  await used(3);
  const { kv } = await openStateStore(dir, log);
  const taken = [];
  for (let i = 0; i < 4; i++) {
    await kv.batch([{ type: 'put', key: `net/n${i}`, value: { i } }]);
    taken.push(await takeSnapshot(kv, dir));
  }
  await kv.close();
  const listed = listSnapshots(dir);
  expect(listed.map((s) => s.seq)).toEqual([7, 6, 5]); // the newest 3
  const { header, entries } = readSnapshot(listed[0]?.file as string);
  expect(header.seq).toBe(7);
  expect(entries.filter(([k]) => k.startsWith('net/'))).toHaveLength(4);
  fs.appendFileSync(listed[0]?.file as string, '{"k":"x","v":1}\n');
  expect(() => readSnapshot(listed[0]?.file as string)).toThrow(/incomplete|checksum/);
  expect(listSnapshots(dir).map((s) => s.seq)).toEqual([6, 5]);
});

test('LevelKv: each batch is synced and bumps the sequence; concurrent batches share writes', async () => {
  const kv = await LevelKv.open(db(), { create: true });
  await Promise.all(Array.from({ length: 50 }, (_, i) => kv.batch([{ type: 'put', key: `k${i}`, value: i }])));
  expect(kv.stats.batches).toBe(50);
  expect(kv.stats.writes).toBeLessThan(50);
  expect(kv.seq).toBe(kv.stats.writes);
  expect(await kv.get('k49')).toBe(49);
  await kv.close();
});

test('LevelKv: a batch written with sync: false is stored but bumps neither the sequence nor the mark', async () => {
  const store = db();
  const markFile = `${store}.mark`;
  const kv = await LevelKv.open(store, { create: true, markFile });
  await kv.batch([{ type: 'put', key: 'a', value: 1 }]);
  expect(kv.seq).toBe(1);
  await kv.batch([{ type: 'put', key: 'b', value: 2 }], { sync: false });
  expect(kv.seq).toBe(1);
  expect(readCommitMark(markFile)).toBe(1);
  expect(await kv.get('b')).toBe(2);
  await kv.close();
  const again = await LevelKv.open(store, { create: false, markFile });
  expect(await again.get('b')).toBe(2); // in the log: it survives the process
  expect(again.seq).toBe(1);
  await again.close();
});
