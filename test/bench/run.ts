/**
 * `npm run bench`: loom against Docker's built-in drivers and the kernel's own
 * limits, side by side, with A/B alternation. Prints tables and writes
 * docs/benchmarks.md (BENCH_OUT overrides; partial runs with BENCH_ONLY write
 * nothing unless BENCH_OUT is set). Everything it creates is removed at the end,
 * also on failure and on SIGINT/SIGTERM.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../helpers/test-host';
import { Engine, engineFromEnv } from '../helpers/engines';
import { run } from '../helpers/run';
import { BenchContext, SECTIONS, SectionId, configFromEnv } from './context';
import { EngineInfo, hostBenchmarks } from './host';
import { crossHostBenchmarks } from './cross-host';
import { ipamBenchmarks } from './ipam';
import { scaleBenchmarks } from './scale';
import { namesBenchmarks } from './names';
import { policyBenchmarks } from './policy';
import { controlPlaneBenchmarks } from './control-plane';
import { RunData, renderMarkdown } from './markdown';

let nproc = 0;

async function machine(): Promise<Record<string, string>> {
  const cpus = os.cpus();
  nproc = cpus.length;
  const lsb = (await run('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'])).stdout.trim();
  return {
    'CPU': `${cpus.length} x ${cpus[0]?.model ?? 'unknown'} (nproc ${(await run('nproc', [])).stdout.trim()})`,
    'memory': `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    'kernel': os.release(),
    'OS': lsb || 'unknown',
    'Node.js': process.version,
    'iperf3': (await run('iperf3', ['--version'])).stdout.split('\n')[0]?.trim() ?? 'unknown',
    'etcd': (await run('etcd', ['--version'])).stdout.split('\n')[0]?.trim() ?? 'unknown',
    'load average at start (1/5/15 min)': os.loadavg().map((x) => x.toFixed(2)).join(' / '),
  };
}

/** BENCH_RENDER=FILE: write the report again from a saved run (text changes only; nothing is measured). */
function renderOnly(file: string): void {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as RunData;
  const out = process.env.BENCH_OUT || path.join(REPO, 'docs', 'benchmarks.md');
  fs.writeFileSync(out, renderMarkdown({ ...data, renderedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }));
  console.log(`rendered ${out} from ${file}`);
}

async function main(): Promise<void> {
  if (process.env.BENCH_RENDER) return renderOnly(process.env.BENCH_RENDER);
  // `npm run bench -- names cross-host`: the same as BENCH_ONLY=names,cross-host.
  const args = process.argv.slice(2).filter(Boolean);
  if (args.length) {
    if (process.env.BENCH_ONLY) throw new Error('give the sections either as arguments or in BENCH_ONLY, not both');
    process.env.BENCH_ONLY = args.join(',');
  }
  const config = configFromEnv();
  const ctx = new BenchContext(config);
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`\n${sig}: cleaning up before exiting`);
      ctx.cleanupAll().finally(() => process.exit(130));
    });
  }
  const overrides = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') || k === 'LOOM_TEST_ENGINE' || k === 'LOOM_DIST')
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const command = [...overrides.filter((o) => !args.length || !o.startsWith('BENCH_ONLY=')), 'npm run bench', ...(args.length ? ['--', ...args] : [])].join(' ');
  // loomd as compiled together with this benchmark (tsconfig.bench.json -> dist-bench/): the code checked out now.
  process.env.LOOM_DIST ??= path.resolve(__dirname, '..', '..');
  const dist = process.env.LOOM_DIST;
  if (!fs.existsSync(path.join(dist, 'driver', 'main.js'))) throw new Error(`${dist}/driver/main.js not found (LOOM_DIST)`);
  const engineEnv = process.env.LOOM_TEST_ENGINE;
  const engine = engineFromEnv();
  const secondEngines = (process.env.BENCH_ENGINES ?? (engine.id === '20.10' ? '28.5' : '20.10'))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s && s !== engine.id && s !== 'none');
  if (!fs.existsSync(engine.dockerd)) throw new Error(`dockerd ${engine.dockerd} not found: run npm run test:prepare (or test/setup-docker28.sh for 28.5)`);
  for (const tool of ['iperf3', 'etcd', 'etcdctl', 'nft', 'iptables', 'busybox', 'nsenter']) {
    if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} not found: run npm run test:prepare first`);
  }
  const info = await machine();
  // The machine is shared: sample the 1-minute load average during the run (quoted in the report).
  const loads: number[] = [];
  const sampler = setInterval(() => loads.push(os.loadavg()[0] as number), 5_000);
  sampler.unref();
  const engines: EngineInfo[] = [];
  const runners: Record<SectionId, () => Promise<void>> = {
    host: async () => {
      await hostBenchmarks(ctx, engines, engine, true);
      // A second engine for 1-3 (default: Docker 28.5 when test/setup-docker28.sh installed it).
      for (const id of secondEngines) {
        process.env.LOOM_TEST_ENGINE = id;
        let other: Engine;
        try {
          other = engineFromEnv();
        } finally {
          if (engineEnv === undefined) delete process.env.LOOM_TEST_ENGINE;
          else process.env.LOOM_TEST_ENGINE = engineEnv;
        }
        if (!fs.existsSync(other.dockerd)) {
          ctx.report.note(`Docker ${id} is not installed (${other.dockerd}); run bash test/setup-docker28.sh to include it.`);
          continue;
        }
        ctx.checkTime(`host benchmarks with Docker ${id}`);
        await hostBenchmarks(ctx, engines, other, false);
      }
    },
    'cross-host': () => crossHostBenchmarks(ctx),
    ipam: () => ipamBenchmarks(ctx),
    scale: () => scaleBenchmarks(ctx),
    names: () => namesBenchmarks(ctx, engines),
    policy: () => policyBenchmarks(ctx),
    'control-plane': () => controlPlaneBenchmarks(ctx, { hosts: config.cpHosts, endpoints: config.cpEndpoints, seconds: config.cpSeconds, churnS: config.cpChurnS }),
  };
  console.log(`loom benchmarks: sections ${[...config.only].join(', ')}; engine ${engine.id}; budget ${config.maxMinutes} min`);
  const sectionTimes: Record<string, number> = {};
  const errors: Record<string, string> = {};
  try {
    for (const id of SECTIONS) {
      if (!config.only.has(id)) continue;
      const t0 = Date.now();
      try {
        ctx.checkTime(`section ${id}`);
        await runners[id]();
      } catch (err) {
        errors[id] = (err as Error).stack ?? String(err);
        console.error(`\nsection ${id} failed: ${errors[id]}`);
      } finally {
        sectionTimes[id] = (Date.now() - t0) / 1000;
        console.log(`(section ${id}: ${sectionTimes[id]?.toFixed(0)} s)`);
      }
    }
  } finally {
    await ctx.cleanupAll();
  }
  clearInterval(sampler);
  const totalS = (Date.now() - ctx.startedAt) / 1000;
  if (loads.length) {
    const sortedLoads = [...loads].sort((a, b) => a - b);
    ctx.facts.loadMedian = (sortedLoads[Math.floor(sortedLoads.length / 2)] as number).toFixed(1);
    ctx.facts.loadMax = (sortedLoads[sortedLoads.length - 1] as number).toFixed(1);
    info['1-minute load average during the run (sampled every 5 s)'] = `median ${ctx.facts.loadMedian}, max ${ctx.facts.loadMax} (${nproc} CPUs)`;
  }
  info['load average at end (1/5/15 min)'] = os.loadavg().map((x) => x.toFixed(2)).join(' / ');
  console.log('\n=== Targets');
  const { textTable, verdict } = await import('./report');
  console.log(textTable(['target', 'required', 'measured', 'result'], ctx.report.targets.map((t) => [t.name, t.target, t.measured, verdict(t)])));
  console.log(`\ntotal ${totalS.toFixed(0)} s (${Object.entries(sectionTimes).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')})`);
  const partial = config.only.size < SECTIONS.length;
  const out = config.out || (partial ? '' : path.join(REPO, 'docs', 'benchmarks.md'));
  const data: RunData = {
    ctx: { config: { ...config, only: [...config.only] }, startedAt: ctx.startedAt, facts: ctx.facts, report: { sections: ctx.report.sections, targets: ctx.report.targets } },
    machine: info,
    engines,
    totalS,
    sectionTimes,
    errors,
    partial,
    command,
  };
  const saved = path.resolve(__dirname, '..', '..', 'last-run.json');
  fs.writeFileSync(saved, JSON.stringify(data, null, 1));
  console.log(`saved the results to ${saved}`);
  if (out) {
    fs.writeFileSync(out, renderMarkdown(data));
    console.log(`wrote ${out}`);
  } else {
    console.log('partial run (BENCH_ONLY): docs/benchmarks.md not written; set BENCH_OUT=FILE to write one');
  }
  if (Object.keys(errors).length) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
