/**
 * loomd's state at start-up: the state directory (never chmodded when it exists), the store
 * (refused when damaged or behind what was acknowledged: store-integrity.ts), its schema,
 * this host's identity and the snapshot scheduler.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoomError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { ensureHostMeta, HostMeta } from '../store/host-meta';
import type { LevelKv } from '../store/level-kv';
import { ensureSchema } from '../store/schema';
import { newestSnapshotSeq, SnapshotScheduler } from '../store/snapshot';
import { openStateStore } from '../store/store-integrity';

/** At most one store snapshot per this interval, taken only after changes (snapshot.ts). */
const SNAPSHOT_INTERVAL_MS = 60_000;
/** This loomd's identity beside its store (host-meta.ts). */
export const IDENTITY_FILE = 'identity.json';

export interface OpenState {
  kv: LevelKv;
  host: Required<HostMeta>;
  snapshots: SnapshotScheduler;
}

/** Opens and verifies the store in `stateDir` (created only when the directory is new). */
export async function openState(stateDir: string, log: Logger): Promise<OpenState> {
  prepareStateDir(stateDir, log);
  const store = await openStateStore(stateDir, log);
  const kv = store.kv;
  log.info({ created: store.created, ...store.counts, seq: kv.seq }, store.created ? 'state store created (new state directory)' : 'state store opened and verified');
  try {
    await ensureSchema(kv);
  } catch (err) {
    await kv.close();
    throw err;
  }
  const snapshots = new SnapshotScheduler(kv, stateDir, log.child({ svc: 'store' }), SNAPSHOT_INTERVAL_MS, newestSnapshotSeq(stateDir));
  return { kv, host: await ensureHostMeta(kv, path.join(stateDir, IDENTITY_FILE)), snapshots };
}

/**
 * The state directory: created root-only (0700) when missing. An existing directory is never
 * chmodded (it may be shared, like /tmp): one others can write to is refused (they could replace
 * loom's store), one others can read is used with a warning.
 */
export function prepareStateDir(dir: string, log: Logger): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(dir);
  } catch {
    st = undefined;
  }
  if (!st) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    return;
  }
  if (!st.isDirectory()) throw new LoomError('invalid', `--state-dir ${dir} exists and is not a directory`);
  if (st.mode & 0o022) {
    throw new LoomError('invalid', `--state-dir ${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)}); loom keeps its store in a directory only root can write: choose another directory or chmod 700 it`);
  }
  if (st.uid !== process.getuid?.()) log.warn({ stateDir: dir, uid: st.uid }, 'the state directory belongs to another user');
  if (st.mode & 0o005) log.warn({ stateDir: dir, mode: (st.mode & 0o7777).toString(8) }, 'the state directory is readable by other users; loom creates it with mode 700');
}
