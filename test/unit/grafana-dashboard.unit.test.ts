/**
 * The Grafana dashboard (docs/grafana/loom.json) is importable dashboard JSON and
 * every panel's query names a metric loomd exports.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Metrics, MetricsSources } from '../../driver/ops/metrics';
import { silentLogger } from '../../lib/logger';

const dash = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'grafana', 'loom.json'), 'utf8'));

async function exportedNames(): Promise<Set<string>> {
  const m = new Metrics(silentLogger());
  const sources = {
    networks: { list: () => [] },
    ipam: { listPools: () => [] },
    kernel: { listLinks: async () => [] },
    agent: { hosts: new Map(), hostId: 'h', remote: new Map(), backlog: 0, health: { isDown: false, view: () => ({ outages: 0 }) }, session: { stats: { attempts: 1 } } },
    claimConflicts: { size: 0 },
    containerNames: () => new Map(),
  } as unknown as MetricsSources;
  m.attach(sources);
  return new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
}

test('the dashboard has what Grafana needs to import it', () => {
  expect(typeof dash.title).toBe('string');
  expect(typeof dash.uid).toBe('string');
  expect(typeof dash.schemaVersion).toBe('number');
  expect(dash.__inputs[0]).toMatchObject({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' });
  expect(Array.isArray(dash.panels)).toBe(true);
  const ids = new Set<number>();
  for (const p of dash.panels) {
    expect(typeof p.id).toBe('number');
    expect(ids.has(p.id)).toBe(false);
    ids.add(p.id);
    expect(['timeseries', 'stat', 'gauge', 'table']).toContain(p.type);
    expect(p.gridPos).toEqual(expect.objectContaining({ x: expect.any(Number), y: expect.any(Number), w: expect.any(Number), h: expect.any(Number) }));
    expect(p.targets.length).toBeGreaterThan(0);
    for (const t of p.targets) expect(typeof t.expr).toBe('string');
  }
});

test('every panel query names metrics loomd exports', async () => {
  const names = await exportedNames();
  const used = new Set<string>();
  for (const p of dash.panels) {
    for (const t of p.targets) {
      const found = (t.expr as string).match(/loom_[a-z0-9_]+/g) ?? [];
      expect(found.length).toBeGreaterThan(0);
      for (const f of found) used.add(f.replace(/_(bucket|count|sum)$/, ''));
    }
  }
  for (const u of used) expect([u, names.has(u)]).toEqual([u, true]);
});
