/**
 * The shape of the house: imports only run down the layers of docs/architecture.md, and
 * the two products meet only on the ground floor (lib/) and at the IPAM's public entry.
 * Reads every product file's imports with TypeScript's own pre-processor (no execution).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { LAYERS, layerOf, violations } from './layer-rules';

const REPO = path.join(__dirname, '..', '..');

function productFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...productFiles(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Relative imports of a file, resolved to repository paths ("driver/kernel/sysctl.ts"). */
function importsOf(file: string, text = fs.readFileSync(path.join(REPO, file), 'utf8')): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => {
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      return [`${base}.ts`, `${base}/index.ts`, base].find((c) => fs.existsSync(path.join(REPO, c))) ?? `${base}.ts`;
    });
}

const files = ['lib', 'driver', 'ipam-driver'].flatMap(productFiles);

test('every product file belongs to a layer', () => {
  expect(files.filter((f) => layerOf(f) === undefined)).toEqual([]);
});

test('imports only run down the layers; driver/ uses ipam-driver/ only through its entry; ipam-driver/ never uses driver/', () => {
  const found = files.flatMap((f) => violations(f, importsOf(f)));
  expect(found).toEqual([]);
});

test('the check catches an upward import, a side door into ipam-driver and a reach into driver', () => {
  const up = importsOf('driver/kernel/sysctl.ts', "import { NetworkService } from '../network/network-service';\n");
  expect(violations('driver/kernel/sysctl.ts', up)).toEqual([expect.stringMatching(/driver\/kernel\/sysctl.ts \(kernel\) imports driver\/network\/network-service.ts \(services\)/)]);
  const side = importsOf('driver/daemon.ts', "import { IpamService } from '../ipam-driver/ipam-service';\n");
  expect(violations('driver/daemon.ts', side)).toEqual([expect.stringMatching(/only through ipam-driver\/index.ts/)]);
  const reach = importsOf('ipam-driver/ipam-service.ts', "import { x } from '../driver/config';\n");
  expect(violations('ipam-driver/ipam-service.ts', reach)).toEqual([expect.stringMatching(/ipam-driver never imports driver/)]);
  const ground = importsOf('lib/errors.ts', "import { x } from '../driver/config';\n");
  expect(violations('lib/errors.ts', ground)).toEqual([expect.stringMatching(/lib\/errors.ts \(ground\) imports driver\/config.ts/)]);
});

test('the layers are listed lowest first, once each', () => {
  expect(new Set(LAYERS.map((l) => l.name)).size).toBe(LAYERS.length);
});
