/**
 * Snapshots of the store: a consistent export (one LevelDB read snapshot) written atomically
 * to <state-dir>/snapshots/store-<UTC time>-<seq>.jsonl (temporary file, fsync, rename, fsync
 * dir), the newest KEEP kept. They are what `loomctl store restore` rebuilds a damaged store
 * from (docs/operations.md, "Store damage").
 *
 * Format, one JSON document per line:
 *   {"format":"loom-store-snapshot","version":1,"seq":N,"createdAt":"…"}   header
 *   {"k":"<key>","v":<value>}                                               one per entry, key order
 *   {"end":true,"entries":M,"sha256":"<hex of every preceding line, newlines included>"}
 * A file whose trailer is missing or whose checksum or count differs is not a snapshot.
 *
 * Cost is bounded: a snapshot is taken only after the store changed, at most once per
 * `minIntervalMs`, in the background (never inside a plugin call), and at a clean stop.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../lib/logger';
import { writeStreamDurably } from './durable-file';
import { COMMIT_KEY, CommitMeta, LevelKv } from './level-kv';

export const SNAPSHOT_DIR = 'snapshots';
export const KEEP = 3;
const FORMAT = 'loom-store-snapshot';

export interface SnapshotHeader {
  format: typeof FORMAT;
  version: 1;
  seq: number;
  createdAt: string;
}

export interface SnapshotInfo {
  file: string;
  seq: number;
  createdAt: string;
}

export const snapshotDir = (stateDir: string): string => path.join(stateDir, SNAPSHOT_DIR);

/** Writes a snapshot of `kv` and removes all but the newest KEEP; returns what it wrote. */
export async function takeSnapshot(kv: LevelKv, stateDir: string): Promise<SnapshotInfo & { entries: number }> {
  const dir = snapshotDir(stateDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const createdAt = new Date().toISOString();
  // One iterator = one LevelDB read snapshot: the entries and their meta/commit sequence agree.
  // Held in memory while writing: loom's stores are small (a full /16 is ~10 MB of JSON).
  const all: Array<[string, unknown]> = [];
  for await (const e of kv.entries()) all.push(e);
  const seq = (all.find(([k]) => k === COMMIT_KEY)?.[1] as CommitMeta | undefined)?.seq ?? 0;
  const header: SnapshotHeader = { format: FORMAT, version: 1, seq, createdAt };
  const file = path.join(dir, `store-${createdAt.replace(/[-:.]/g, '')}-${seq}.jsonl`);
  const hash = createHash('sha256');
  async function* body(): AsyncGenerator<string> {
    let buf = '';
    const add = (line: string): void => {
      hash.update(line);
      buf += line;
    };
    add(JSON.stringify(header) + '\n');
    for (const [k, v] of all) {
      add(JSON.stringify({ k, v }) + '\n');
      if (buf.length < 1 << 18) continue;
      yield buf;
      buf = '';
    }
    yield buf;
    yield JSON.stringify({ end: true, entries: all.length, sha256: hash.digest('hex') }) + '\n';
  }
  await writeStreamDurably(file, body());
  rotate(dir);
  return { file, seq, createdAt, entries: all.length };
}

/** Verified snapshots, newest first (unverifiable files are skipped). */
export function listSnapshots(stateDir: string): SnapshotInfo[] {
  const dir = snapshotDir(stateDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /^store-.*\.jsonl$/.test(n));
  } catch {
    return [];
  }
  const out: SnapshotInfo[] = [];
  for (const n of names) {
    try {
      const { header } = readSnapshot(path.join(dir, n));
      out.push({ file: path.join(dir, n), seq: header.seq, createdAt: header.createdAt });
    } catch {
      // not a complete snapshot (e.g. damaged): never offered for a restore
    }
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** The sequence in the newest snapshot's file name, unverified (cheap: for start-up). */
export function newestSnapshotSeq(stateDir: string): number | undefined {
  try {
    const newest = fs.readdirSync(snapshotDir(stateDir)).filter((n) => /^store-.*-\d+\.jsonl$/.test(n)).sort().pop();
    return newest ? Number(/-(\d+)\.jsonl$/.exec(newest)?.[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads and verifies a snapshot; throws naming what is wrong with it. */
export function readSnapshot(file: string): { header: SnapshotHeader; entries: Array<[string, unknown]> } {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines.pop() !== '') throw new Error(`${file}: incomplete (no final newline)`);
  const trailerText = lines.pop();
  const trailer = trailerText ? (JSON.parse(trailerText) as { end?: boolean; entries?: number; sha256?: string }) : undefined;
  if (!trailer?.end) throw new Error(`${file}: incomplete (no trailer)`);
  const hash = createHash('sha256');
  for (const l of lines) hash.update(l + '\n');
  if (hash.digest('hex') !== trailer.sha256) throw new Error(`${file}: checksum mismatch`);
  const header = JSON.parse(lines[0] ?? '{}') as SnapshotHeader;
  if (header.format !== FORMAT || header.version !== 1) throw new Error(`${file}: not a loom store snapshot (version 1)`);
  const entries = lines.slice(1).map((l) => {
    const e = JSON.parse(l) as { k: string; v: unknown };
    return [e.k, e.v] as [string, unknown];
  });
  if (entries.length !== trailer.entries) throw new Error(`${file}: ${entries.length} entries, trailer says ${trailer.entries}`);
  return { header, entries };
}

function rotate(dir: string): void {
  const names = fs.readdirSync(dir).filter((n) => /^store-.*\.jsonl$/.test(n)).sort();
  for (const n of names.slice(0, Math.max(0, names.length - KEEP))) fs.rmSync(path.join(dir, n), { force: true });
  // Temporary files of a crashed writer.
  for (const n of fs.readdirSync(dir).filter((x) => x.includes('.tmp-'))) {
    const pid = Number(n.split('.tmp-')[1]);
    if (pid !== process.pid) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/**
 * Takes a snapshot after changes, at most once per `minIntervalMs`, in the background.
 * `stop()` takes a last one when the store changed since the previous.
 */
export class SnapshotScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastAt = 0;
  private lastSeq: number;
  private stopped = false;

  constructor(
    private readonly kv: LevelKv,
    private readonly stateDir: string,
    private readonly log: Logger,
    private readonly minIntervalMs = 60_000,
    lastSeq?: number,
  ) {
    this.lastSeq = lastSeq ?? -1;
  }

  /** The store changed: schedule a snapshot (no-op when one is already scheduled). */
  changed(): void {
    if (this.stopped || this.timer || this.running) return;
    const wait = Math.max(0, this.lastAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.take().finally(() => {
        this.running = undefined;
        if (this.kv.seq !== this.lastSeq) this.changed();
      });
    }, wait);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    if (this.kv.seq !== this.lastSeq) await this.take();
  }

  /** Takes one now if the store changed since the last one (errors are logged, not thrown). */
  async take(): Promise<void> {
    if (this.kv.seq === this.lastSeq) return;
    this.lastAt = Date.now();
    try {
      const s = await takeSnapshot(this.kv, this.stateDir);
      this.lastSeq = s.seq;
      this.log.debug({ file: s.file, seq: s.seq, entries: s.entries, ms: Date.now() - this.lastAt }, 'store snapshot written');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not write a store snapshot (the previous ones are kept)');
    }
  }
}
