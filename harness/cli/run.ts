import type { Argv, CommandModule } from 'yargs';
import type { RunResult } from '../experiment/runner.ts';
import { counts } from '../experiment/campaign-state.ts';
import { summaryTable } from '../experiment/summary.ts';
import { dutyCycleText } from '../experiment/duty-cycle.ts';
import { checkExperiment } from '../experiment/treatments.ts';
import { testbedId } from '../spec/load.ts';
import { Progress } from '../experiment/progress.ts';
import { errorMessage } from '../util/errors.ts';

// The runner and the report writer (with vega) are imported when used: a spec
// error or --dry-run then answers without loading them (see main.ts).
const runner = () => import('../experiment/runner.ts');

interface RunArgs {
  spec: string;
  out: string;
  influx?: string;
  inventory?: string;
  'dry-run': boolean;
  report: boolean;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <spec>',
  describe: 'run an experiment end to end: testbed, guests, measured migrations, run directory',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true })
      .option('out', {
        type: 'string',
        default: 'runs',
        describe: 'parent folder of the run directory',
      })
      .option('influx', {
        type: 'string',
        describe: 'also stream samples to InfluxDB 1.x, e.g. http://127.0.0.1:8086/migbench',
      })
      .option('inventory', {
        type: 'string',
        describe: 'run on the servers of this inventory (ssh driver) instead of the spec\'s testbed; see README "Running on a cluster"',
      })
      .option('report', {
        type: 'boolean',
        default: true,
        describe: 'write the HTML report into <run directory>/report at the end and print its path (--no-report: skip)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'check the spec, every treatment and its plan, print the campaign; build and run nothing',
      }) as Argv<RunArgs>,
  handler: async (a) => {
    // every check that needs no testbed, before the image build and the testbed
    const { spec, treatments } = checkExperiment(a.spec);
    if (a['dry-run']) {
      console.log(`${a.spec}: valid; testbed '${testbedId(spec)}', ${treatments.length} treatment(s) x ${spec.repetitions} repetition(s)`);
      const shown = 100;
      for (const t of treatments.slice(0, shown)) console.log(`  ${t.id} ${JSON.stringify(t.levels)}`);
      if (treatments.length > shown) console.log(`  ... and ${treatments.length - shown} more`);
      return;
    }
    const t0 = Date.now();
    const { progress, log } = terminal(t0);
    const res = await (
      await runner()
    ).runExperiment({ specFile: a.spec, outDir: a.out, influx: a.influx, inventory: a.inventory, log, progress });
    printOutcome(res, t0);
    if (a.report) await report(res);
  },
};

export const resumeCommand: CommandModule<object, { runDir: string; influx?: string; 'retry-failed': boolean; report: boolean }> = {
  command: 'resume <runDir>',
  describe: 'continue a campaign after Ctrl-C, a crash or kill -9: done units are kept, an interrupted one is redone',
  builder: (y) =>
    y
      .positional('runDir', { type: 'string', demandOption: true })
      .option('retry-failed', { type: 'boolean', default: false, describe: 'also retry units that failed' })
      .option('report', { type: 'boolean', default: true, describe: 'write the HTML report at the end (--no-report: skip)' })
      .option('influx', { type: 'string', describe: 'stream samples to InfluxDB 1.x' }) as Argv<{
      runDir: string;
      influx?: string;
      'retry-failed': boolean;
      report: boolean;
    }>,
  handler: async (a) => {
    const t0 = Date.now();
    const { progress, log } = terminal(t0);
    const res = await (
      await runner()
    ).resumeExperiment({ runDir: a.runDir, influx: a.influx, retryFailed: a['retry-failed'], log, progress });
    printOutcome(res, t0);
    if (a.report) await report(res);
  },
};

/** Log lines stamped with the seconds since start; on a terminal they go above a progress bar. */
function terminal(t0: number): { progress: Progress; log: (l: string) => void } {
  const progress = new Progress({ tty: !!process.stderr.isTTY, line: (l) => console.error(l) });
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
  return { progress, log: (l) => progress.log(`${stamp()} ${l}`) };
}

/** The run's HTML report; a failure to write it loses nothing measured, so it only warns. */
async function report(res: RunResult): Promise<void> {
  if (!res.records.length && res.state.units.every((u) => u.status !== 'done')) return;
  try {
    console.error(`writing the report into ${res.dir}/report`);
    const [{ writeReport }, { loadRunDir }] = await Promise.all([
      import('../../analysis/report/write.ts'),
      import('../../analysis/rundir.ts'),
    ]);
    const r = await writeReport(loadRunDir(res.dir));
    console.log(`report: ${r.html}`);
  } catch (e) {
    console.error(`migbench: the report was not written (${errorMessage(e)}); write it with 'migbench report ${res.dir}'`);
  }
}

function printOutcome(res: RunResult, t0: number): void {
  const wall = (Date.now() - t0) / 1000;
  if (res.records.length) console.log(summaryTable(res.records));
  const n = res.records.length;
  const c = counts(res.state);
  console.log(
    `\n${n} migrations (${res.records.filter((r) => r.status === 'completed').length} completed) in ${wall.toFixed(0)} s (${((n / wall) * 60).toFixed(1)} per minute)`,
  );
  console.log(`units: ${c.done} done, ${c.failed} failed, ${c.pending + c.running} left of ${res.state.units.length}`);
  if (res.duty) console.log(dutyCycleText(res.duty));
  console.log(`run directory: ${res.dir}`);
  if (res.records.some((r) => r.status !== 'completed') || c.failed > 0) process.exitCode = 1;
}
