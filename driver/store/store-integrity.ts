/**
 * Opening the state store without ever starting silently with less state.
 *
 * Layout under --state-dir:
 *   loom-state.json   marker written (durably) once the store was first created: from then on
 *                     the directory is "used" and the store must exist
 *   db/               the LevelDB store
 *   db.commit         sequence of the last synced write (level-kv.ts)
 *   store-damaged.json  written when damage was found; every start refuses while it exists
 *                       (LevelDB rewrites a damaged log into a table at open, so the evidence
 *                       would be gone by the next start)
 *   recovery.json     left by `loomctl store restore|rebuild`; the next start logs it and removes it
 *   snapshots/        snapshot.ts
 *
 * The store is created (createIfMissing) only when the directory is new: no marker and no
 * LevelDB file in db/. A directory with a store but no marker (written by an older loom) is
 * opened as it is and given a marker. Otherwise a store that LevelDB cannot open, whose
 * tables cannot be read, whose log LevelDB had to cut (its LOG says "dropping … bytes"), or
 * that ends before the last write acknowledged (db.commit) makes loomd refuse to start with an
 * error that names the damage and the recovery commands (docs/operations.md, "Store damage").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { removeFileDurably, writeFileDurably } from './durable-file';
import { LevelKv, levelMessage, readCommitMark } from './level-kv';
import { listSnapshots } from './snapshot';

export const STATE_MARKER = 'loom-state.json';
export const DAMAGE_FILE = 'store-damaged.json';
export const RECOVERY_FILE = 'recovery.json';
export const COMMIT_MARK = 'db.commit';
export const DB_DIR = 'db';

export interface StoreCounts {
  entries: number;
  networks: number;
  endpoints: number;
  pools: number;
  allocations: number;
}

export interface OpenedStore {
  kv: LevelKv;
  /** true when this start created the store (a new state directory). */
  created: boolean;
  counts: StoreCounts;
}

export const emptyCounts = (): StoreCounts => ({ entries: 0, networks: 0, endpoints: 0, pools: 0, allocations: 0 });

/** Counts one entry by its key's kind (schema.ts). */
export function countKey(c: StoreCounts, key: string): void {
  c.entries++;
  if (key.startsWith('net/')) c.networks++;
  else if (key.startsWith('ep/')) c.endpoints++;
  else if (key.startsWith('ipam/pool/')) c.pools++;
  else if (key.startsWith('ipam/addr/')) c.allocations++;
}

/** True when `dbDir` holds any file LevelDB writes for a store (not just an empty directory). */
export function hasStoreFiles(dbDir: string): boolean {
  try {
    return fs.readdirSync(dbDir).some((n) => n === 'CURRENT' || n.startsWith('MANIFEST-') || /\.(log|ldb|sst)$/.test(n));
  } catch {
    return false;
  }
}

/** Opens (or, in a new directory, creates) the store, refusing any sign of lost state. */
export async function openStateStore(stateDir: string, log: Logger): Promise<OpenedStore> {
  const dbDir = path.join(stateDir, DB_DIR);
  const damageFile = path.join(stateDir, DAMAGE_FILE);
  if (fs.existsSync(damageFile)) {
    const d = JSON.parse(fs.readFileSync(damageFile, 'utf8')) as { reason?: string; detectedAt?: string };
    throw damaged(stateDir, `${d.reason ?? 'damage was found'} (found ${d.detectedAt ?? 'earlier'}; ${DAMAGE_FILE} stays until a recovery)`);
  }
  const used = fs.existsSync(path.join(stateDir, STATE_MARKER));
  const created = !used && !hasStoreFiles(dbDir);
  if (!used && !created) log.warn({ stateDir }, 'state directory without a marker (written by an older loom): opening its store as it is');
  let kv: LevelKv;
  try {
    kv = await LevelKv.open(dbDir, { create: created, markFile: path.join(stateDir, COMMIT_MARK), log });
  } catch (err) {
    const e = err as { code?: string };
    if (e.code === 'LEVEL_LOCKED' || /lock/i.test(levelMessage(err))) {
      throw new LoomError('unavailable', `the state store ${dbDir} is in use by another process (another loomd with the same --state-dir?): ${levelMessage(err)}`);
    }
    // A full disk is not damage: refuse this start only (opening replays the log into a table).
    if (/No space left/i.test(levelMessage(err))) {
      throw new LoomError('unavailable', `loom's state store ${dbDir} could not be opened: the disk is full (LevelDB: ${levelMessage(err)}); free space and start loomd again`);
    }
    throw recordDamage(stateDir, describeOpenFailure(dbDir, err));
  }
  try {
    const outcome = droppedLog(dbDir) ?? checkCounts(kv, stateDir, await scan(kv), used);
    if (typeof outcome === 'string') throw recordDamage(stateDir, outcome);
    if (!used) writeFileDurably(path.join(stateDir, STATE_MARKER), JSON.stringify({ format: 'loom-state', version: 1, createdAt: new Date().toISOString(), store: DB_DIR }) + '\n');
    reportRecovery(stateDir, outcome, log);
    return { kv, created, counts: outcome };
  } catch (err) {
    await kv.close().catch(() => undefined);
    throw err;
  }
}

/** What LevelDB's open error means, in an operator's words. */
function describeOpenFailure(dbDir: string, err: unknown): string {
  const msg = levelMessage(err);
  if (!fs.existsSync(dbDir) || !hasStoreFiles(dbDir)) return `the store ${dbDir} is missing or empty (LevelDB: ${msg})`;
  if (!fs.existsSync(path.join(dbDir, 'CURRENT'))) return `the store's CURRENT file is missing (${dbDir}/CURRENT; LevelDB: ${msg})`;
  const table = /\/(\d+\.(?:ldb|sst))/.exec(msg)?.[1];
  if (table && !/missing files/i.test(msg)) return `the store cannot be read: table file ${table} is truncated or corrupt (LevelDB: ${msg})`;
  if (/missing files/i.test(msg)) return `table files of the store are missing (LevelDB: ${msg})`;
  if (/MANIFEST|descriptor/i.test(msg)) return `the store's MANIFEST is missing or damaged (LevelDB: ${msg})`;
  return `the store could not be opened (LevelDB: ${msg})`;
}

/** LevelDB's info log after open: lines where it cut part of a damaged write-ahead log. */
function droppedLog(dbDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dbDir, 'LOG'), 'utf8');
  } catch {
    return undefined;
  }
  const bad = text.split('\n').filter((l) => /dropping \d+ bytes|ignoring error|Corruption/i.test(l));
  if (!bad.length) return undefined;
  return `LevelDB cut part of the store's write-ahead log while opening it (acknowledged writes may be lost): ${bad.slice(0, 3).map((l) => l.replace(/^\S+ \S+ /, '')).join('; ')}`;
}

/** Reads every entry once (an unreadable table fails here, not in the middle of a call). */
async function scan(kv: LevelKv): Promise<StoreCounts | string> {
  const c = emptyCounts();
  try {
    for await (const [key] of kv.entries()) countKey(c, key);
  } catch (err) {
    const msg = levelMessage(err);
    const file = /\/(\d+\.(ldb|sst))/.exec(msg)?.[1];
    return `the store cannot be read${file ? `: table file ${file} is truncated or corrupt` : ''} (LevelDB: ${msg}; ${c.entries} entries were readable before it)`;
  }
  return c;
}

/** A used store must hold the schema and every acknowledged write (db.commit). */
function checkCounts(kv: LevelKv, stateDir: string, c: StoreCounts | string, used: boolean): StoreCounts | string {
  if (typeof c === 'string') return c;
  if (used && c.entries === 0) return `the store ${path.join(stateDir, DB_DIR)} is empty although this state directory was in use`;
  const mark = readCommitMark(path.join(stateDir, COMMIT_MARK));
  if (mark !== undefined && mark > kv.seq) {
    return `the store ends at write #${kv.seq} but write #${mark} was acknowledged: ${mark - kv.seq} acknowledged write(s) are missing (its write-ahead log was truncated, removed or damaged)`;
  }
  return c;
}

function recordDamage(stateDir: string, reason: string): LoomError {
  try {
    writeFileDurably(path.join(stateDir, DAMAGE_FILE), JSON.stringify({ reason, detectedAt: new Date().toISOString() }, null, 2) + '\n');
  } catch {
    // the refusal below stands on its own (e.g. a full disk)
  }
  return damaged(stateDir, reason);
}

/** The refusal: the damage, then the ways out. */
export function damaged(stateDir: string, reason: string): LoomError {
  const snaps = listSnapshots(stateDir);
  const snapText = snaps.length
    ? `restore the newest snapshot (${snaps.length} kept, newest ${snaps[0]?.createdAt}): loomctl store restore --state-dir ${stateDir}`
    : `no snapshot is available in ${stateDir}/snapshots`;
  return new LoomError(
    'unavailable',
    `loom's state store is damaged: ${reason}. loomd refuses to start with less state than it acknowledged. ` +
      `With loomd stopped, either ${snapText}; or rebuild from Docker's view: loomctl store rebuild --state-dir ${stateDir} --docker-host unix:///var/run/docker.sock. ` +
      'See docs/operations.md, "Store damage".',
  );
}

/** Logs (at warn) what an offline recovery put into the store, once, then forgets it. */
function reportRecovery(stateDir: string, counts: StoreCounts, log: Logger): void {
  const file = path.join(stateDir, RECOVERY_FILE);
  if (!fs.existsSync(file)) return;
  let note: unknown;
  try {
    note = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    note = fs.readFileSync(file, 'utf8');
  }
  log.warn({ recovery: note, loaded: counts }, 'starting from a recovered store');
  removeFileDurably(file);
}
