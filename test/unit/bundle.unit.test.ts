/**
 * `npm run build` bundles loomd (dist/driver/main.js and what it imports) into one file with
 * esbuild (package.json's "bundle" script): fewer files for node to find, read and wrap on
 * every start. Which runtime dependencies go into the bundle is a decision per dependency:
 * the pure-JavaScript ones loomd loads before its first real call are bundled; the native
 * ones (their binaries are found from their own directory) and the ones loaded only when used
 * (dockerode, etcd3, express, prom-client, yaml, dns-packet) stay outside. This test makes a
 * new dependency take that decision.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
const BUNDLED = ['async-mutex', 'ip-address', 'pino', 'zod'];
const NATIVE = ['level', 'netlink'];
const externals = [...(pkg.scripts.bundle ?? '').matchAll(/--external:(\S+)/g)].map((m) => m[1]);

test('every runtime dependency is either bundled or external, never both', () => {
  for (const dep of Object.keys(pkg.dependencies)) {
    expect([dep, BUNDLED.includes(dep) !== externals.includes(dep)]).toEqual([dep, true]);
  }
});

test('native dependencies stay outside the bundle', () => {
  for (const dep of NATIVE) expect(externals).toContain(dep);
});

test('the build and the benchmark bundle loomd in place, after compiling', () => {
  expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.build\.json && npm run -s bundle -- dist\/driver\/main\.js --outfile=dist\/driver\/main\.js/);
  expect(pkg.scripts.bench).toMatch(/^tsc -p tsconfig\.bench\.json && npm run -s bundle -- dist-bench\/driver\/main\.js --outfile=dist-bench\/driver\/main\.js/);
  expect(pkg.scripts.bundle).toMatch(/^esbuild --bundle --platform=node /);
});
