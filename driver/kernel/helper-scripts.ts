/**
 * Where loomd's helper scripts are (netns-helper, overlay-ns-helper, dns-socket-helper: each
 * runs as a process of its own, inside another network namespace). The first that exists of:
 * beside this module's compiled file (dist/driver/kernel/); under kernel/ beside loomd's
 * bundle (dist/driver/main.js is one file built by esbuild: this code's __dirname is then
 * dist/driver); the build's, when loomd's code runs from its TypeScript sources (tests).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const found = new Map<string, string>();

/** The path of the compiled helper `file` (e.g. 'netns-helper.js'); looked up once. */
export function helperScript(file: string): string {
  let f = found.get(file);
  if (f) return f;
  const candidates = [path.join(__dirname, file), path.join(__dirname, 'kernel', file), path.join(__dirname, '..', '..', 'dist', 'driver', 'kernel', file)];
  f = candidates.find((c) => fs.existsSync(c));
  // None (an incomplete installation, a build in progress): say where it was looked for; not remembered.
  if (!f) throw new Error(`loom's helper ${file} is missing (looked for ${candidates.join(', ')}): reinstall loom or run npm run build`);
  found.set(file, f);
  return f;
}
