/**
 * Files that must survive a crash whole or not at all: written to a temporary file in the
 * same directory, fsynced, renamed over the target, and the directory fsynced (the rename
 * itself is durable only then). A reader sees the old or the new content, never a mix.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` with `content` atomically and durably. */
export function writeFileDurably(file: string, content: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Removes `file` (if present) durably. */
export function removeFileDurably(file: string): void {
  if (!fs.existsSync(file)) return;
  fs.rmSync(file, { force: true });
  fsyncDir(path.dirname(file));
}

/**
 * Streams chunks into `file` the same way (temporary file, fsync, rename, fsync dir),
 * without holding the whole content in memory.
 */
export async function writeStreamDurably(file: string, chunks: AsyncIterable<string>, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, 'w', mode);
  try {
    for await (const chunk of chunks) await fh.write(chunk);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  await fh.close();
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}
