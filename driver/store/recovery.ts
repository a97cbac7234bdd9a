/**
 * Offline recovery of a damaged store (`loomctl store restore|rebuild|accept`, loomd stopped).
 *
 * Invariants:
 * - Refused while a loomd holds the store (LevelDB's lock).
 * - Nothing is deleted: the old store directory is renamed to db.damaged-<time> and kept.
 * - The new store is written through LevelKv (synced), then the damage file is removed and
 *   recovery.json records what was done; the next loomd start logs it (warn) with the counts
 *   it loaded, so a recovered start always says so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import { LoomError } from '../../lib/errors';
import { removeFileDurably, writeFileDurably } from './durable-file';
import { COMMIT_KEY, LevelKv, levelMessage } from './level-kv';
import type { KvOp } from '../../lib/kv';
import { listSnapshots, readSnapshot } from './snapshot';
import { COMMIT_MARK, DAMAGE_FILE, DB_DIR, RECOVERY_FILE, STATE_MARKER, StoreCounts, countKey, emptyCounts, hasStoreFiles } from './store-integrity';

export interface RecoveryReport {
  how: 'snapshot' | 'docker' | 'accept';
  at: string;
  /** Where the previous store was moved (kept for inspection). */
  movedAside?: string;
  snapshot?: { file: string; seq: number; createdAt: string };
  counts: StoreCounts;
  /** What could not be recovered, one line each. */
  skipped: string[];
}

/** Throws unless no process holds the store (LevelDB's lock); damage of any other kind is fine here. */
export async function ensureStopped(stateDir: string): Promise<void> {
  const dbDir = path.join(stateDir, DB_DIR);
  if (!fs.existsSync(dbDir)) return;
  const db = new Level(dbDir, { createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    if ((err as { code?: string }).code === 'LEVEL_LOCKED' || /lock/i.test(levelMessage(err))) {
      throw new LoomError('unavailable', `the store ${dbDir} is in use: stop loomd first (${levelMessage(err)})`);
    }
    return;
  }
  await db.close();
}

/** Replaces the store with `entries` (the old one moved aside) and records the recovery. */
async function replaceStore(stateDir: string, entries: Array<[string, unknown]>, report: Omit<RecoveryReport, 'at' | 'counts' | 'movedAside'>): Promise<RecoveryReport> {
  await ensureStopped(stateDir);
  const dbDir = path.join(stateDir, DB_DIR);
  const at = new Date().toISOString();
  let movedAside: string | undefined;
  if (fs.existsSync(dbDir)) {
    movedAside = `${dbDir}.damaged-${at.replace(/[-:.]/g, '')}`;
    fs.renameSync(dbDir, movedAside);
  }
  fs.rmSync(path.join(stateDir, COMMIT_MARK), { force: true });
  const kv = await LevelKv.open(dbDir, { create: true, markFile: path.join(stateDir, COMMIT_MARK) });
  const counts = emptyCounts();
  try {
    const ops: KvOp[] = [];
    for (const [key, value] of entries) {
      if (key === COMMIT_KEY) continue;
      ops.push({ type: 'put', key, value });
      countKey(counts, key);
      if (ops.length >= 1000) await kv.batch(ops.splice(0));
    }
    if (ops.length) await kv.batch(ops);
  } finally {
    await kv.close();
  }
  const full: RecoveryReport = { ...report, at, ...(movedAside ? { movedAside } : {}), counts };
  writeFileDurably(path.join(stateDir, RECOVERY_FILE), JSON.stringify(full, null, 2) + '\n');
  if (!fs.existsSync(path.join(stateDir, STATE_MARKER))) {
    writeFileDurably(path.join(stateDir, STATE_MARKER), JSON.stringify({ format: 'loom-state', version: 1, createdAt: at, store: DB_DIR }) + '\n');
  }
  removeFileDurably(path.join(stateDir, DAMAGE_FILE));
  return full;
}

/** Restores `file`, or the newest verified snapshot. */
export async function restoreSnapshot(stateDir: string, file?: string): Promise<RecoveryReport> {
  const chosen = file ?? listSnapshots(stateDir)[0]?.file;
  if (!chosen) throw new LoomError('not-found', `no verified snapshot in ${path.join(stateDir, 'snapshots')}: use loomctl store rebuild (from Docker's view)`);
  const { header, entries } = readSnapshot(chosen);
  return replaceStore(stateDir, entries, { how: 'snapshot', snapshot: { file: chosen, seq: header.seq, createdAt: header.createdAt }, skipped: [] });
}

/** Replaces the store with entries rebuilt from Docker's view (docker-rebuild.ts). */
export async function rebuildStore(stateDir: string, entries: Array<[string, unknown]>, skipped: string[]): Promise<RecoveryReport> {
  return replaceStore(stateDir, entries, { how: 'docker', skipped });
}

/**
 * The operator's explicit choice to go on with the store as LevelDB recovered it (e.g. a
 * store that lost its last writes, when Docker's view is no better): the damage file is
 * removed and the commit mark reset to the store's own sequence.
 */
export async function acceptStore(stateDir: string): Promise<RecoveryReport> {
  await ensureStopped(stateDir);
  const dbDir = path.join(stateDir, DB_DIR);
  if (!hasStoreFiles(dbDir)) throw new LoomError('not-found', `no store in ${dbDir} to accept: use restore or rebuild`);
  const kv = await LevelKv.open(dbDir, { create: false });
  const counts = emptyCounts();
  try {
    for await (const [key] of kv.entries()) countKey(counts, key);
    writeFileDurably(path.join(stateDir, COMMIT_MARK), JSON.stringify({ seq: kv.seq }).padEnd(63) + '\n');
  } finally {
    await kv.close();
  }
  const report: RecoveryReport = { how: 'accept', at: new Date().toISOString(), counts, skipped: [] };
  writeFileDurably(path.join(stateDir, RECOVERY_FILE), JSON.stringify(report, null, 2) + '\n');
  removeFileDurably(path.join(stateDir, DAMAGE_FILE));
  return report;
}
