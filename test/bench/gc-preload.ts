/**
 * Preloaded (node -r) into the loomd processes the benchmarks start, never into a real loomd:
 * on SIGUSR2 it runs a full garbage collection (node --expose-gc) and writes
 * process.memoryUsage() to $LOOM_BENCH_MEM_FILE, so that memory can be read both as it is and
 * after the garbage of the calls just made has been collected.
 */
import * as fs from 'node:fs';

const fullGc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  fullGc?.();
  fullGc?.();
  const file = process.env.LOOM_BENCH_MEM_FILE;
  if (file) fs.writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
  if (file) fs.renameSync(`${file}.tmp`, file);
});
