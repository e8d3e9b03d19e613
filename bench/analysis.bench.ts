/**
 * Analysis benchmark: generates a Salfner-scale synthetic campaign
 * (528 treatments x 20 repetitions = 10,560 migrations, 1 M power samples)
 * in a temp dir, then times loading, every analysis, and the report; then,
 * outside the goal figure, CSV export, compare, and the analysis of the same
 * campaign without its D(t) trace (hot/cold fitted from durations).
 *
 *   node bin/run-ts.js bench/analysis.bench.ts [--small] [--keep]
 *
 * --small runs a quick version (12 treatments, 2 plan kinds); --keep leaves
 * the run directory in place and prints its path (to look at the report).
 */
import { mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { loadRunDir } from '../analysis/rundir.ts';
import { analyzeRun } from '../analysis/analyze.ts';
import { writeReport } from '../analysis/report/write.ts';
import { loadVega } from '../analysis/report/svg.ts';
import { exportCsv } from '../analysis/export.ts';
import { compareRuns } from '../analysis/compare.ts';

const small = process.argv.includes('--small');
const keep = process.argv.includes('--keep');
const root = mkdtempSync(join(tmpdir(), 'migbench-analysis-bench-'));
/** Each stage's wall time and the process's CPU time (user + system) during it, in seconds. */
const stages: { name: string; wall: number; cpu: number }[] = [];
async function stage<T>(name: string, f: () => T | Promise<T>): Promise<T> {
  const t = performance.now();
  const c = process.cpuUsage();
  const r = await f();
  const u = process.cpuUsage(c);
  stages.push({ name, wall: (performance.now() - t) / 1000, cpu: (u.user + u.system) / 1e6 });
  return r;
}
/** The goal of issue 17: load + analyses + report within this many seconds. */
const GOAL_S = 2;

try {
  const opts = small
    ? { reps: 5, vmSizesMiB: [256], wsetsMiB: [16, 64], ratesMbit: [100, 200, 400], planVms: 4, failRate: 0.02, powerSamples: 20_000 }
    : {
        reps: 20,
        vmSizesMiB: [256, 512, 1024, 2048],
        wsetsMiB: [8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88],
        ratesMbit: [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200],
        failRate: 0.01,
        powerSamples: 1_000_000,
      };
  const dir = await stage('generate (not analysis)', () => generateSyntheticRun(join(root, 'run'), { seed: 1, ...opts }));
  const run = await stage('load manifest + migrations', () => loadRunDir(dir));
  const analysis = await stage('analyze (stream samples, fits, prediction, variability, plans)', () => analyzeRun(run));
  // vega and vega-lite are imported on the first render (analysis/report/svg.ts): timed on their own, as their
  // import was before it became lazy (module load, outside every stage), so the goal figure stays comparable
  await stage('import vega + vega-lite (one-off, not in the goal figure)', () => loadVega());
  const report = await stage('report (tables + SVG plots)', () => writeReport(run, undefined, { analysis }));
  await stage('export --csv', () => exportCsv(run, join(dir, 'csv')));
  await stage('compare run with itself', () => compareRuns(run, run));
  // a campaign without the in-guest tracer: hot/cold is fitted from the durations (validation leaves each rate out
  // in turn), the costliest analysis path; not in the goal figure (the campaign has its D(t) trace)
  renameSync(join(dir, 'samples', 'dirty_trace.jsonl'), join(root, 'dirty_trace.jsonl'));
  const noTrace = await stage('load + analyze without the D(t) trace (hot/cold from durations; not in the goal figure)', async () =>
    analyzeRun(loadRunDir(dir)),
  );

  const sum = (xs: typeof stages) => ({ wall: xs.reduce((a, x) => a + x.wall, 0), cpu: xs.reduce((a, x) => a + x.cpu, 0) });
  // generate and the one-off vega import are not analysis work
  const measured = stages.slice(1).filter((x) => !x.name.startsWith('import vega') && !x.name.includes('without the D(t) trace'));
  const core = sum(measured.filter((x) => /^(load|analyze|report)/.test(x.name)));
  const all = sum(measured);
  const size = (f: string) => `${(statSync(join(dir, f)).size / 1e6).toFixed(1)} MB`;
  console.log(
    `campaign: ${run.manifest.treatments.length} treatments, ${run.migrations.length} migrations, ${analysis.power.samples} power samples`,
  );
  console.log(`files: migrations.jsonl ${size('migrations.jsonl')}, samples/power.jsonl ${size('samples/power.jsonl')}`);
  console.log(
    `machine: ${availableParallelism()} cores, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (1/5/15 min)`,
  );
  const row = (wall: number, cpu: number, name: string) =>
    console.log(`${wall.toFixed(2).padStart(7)} s wall ${cpu.toFixed(2).padStart(7)} s CPU  ${name}`);
  for (const x of stages) row(x.wall, x.cpu, x.name);
  const met = (x: number) => (x <= GOAL_S ? 'met' : 'not met');
  row(core.wall, core.cpu, `load + analyses + report (goal <= ${GOAL_S} s: ${met(core.wall)} by wall, ${met(core.cpu)} by CPU time)`);
  console.log(
    '         (load + analyses + report: the stages named load, analyze and report; the totals leave out generate and the vega import)',
  );
  row(all.wall, all.cpu, 'total (load + analyses + report + export + compare)');
  console.log(
    `duration model: median error ${(analysis.duration.summary.medianRelError * 100).toFixed(2)} %, energy alpha ${analysis.energy.pooled.fits[0]?.alpha.toFixed(4)} J/MB`,
  );
  console.log(
    `without the trace: hot/cold fitted from durations for ${noTrace.validation.rows.length} migrations, median error ${(noTrace.duration.summary.medianRelError * 100).toFixed(2)} %`,
  );
  console.log(`report: ${report.html}`);
} finally {
  if (keep) console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
