/** loom's version, from the package.json next to the build (dist/driver -> repository root). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const VERSION: string = (() => {
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'loom' && pkg.version) return pkg.version;
    } catch {
      // not here
    }
  }
  return 'unknown';
})();
