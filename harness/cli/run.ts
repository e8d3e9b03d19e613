import type { Argv, CommandModule } from 'yargs';
import { resumeExperiment, runExperiment, type RunResult } from '../experiment/runner.ts';
import { counts } from '../experiment/campaign-state.ts';
import { summaryTable } from '../experiment/summary.ts';
import { checkExperiment } from '../experiment/treatments.ts';
import { testbedId } from '../spec/load.ts';

interface RunArgs {
  spec: string;
  out: string;
  influx?: string;
  'dry-run': boolean;
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
    const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
    const res = await runExperiment({ specFile: a.spec, outDir: a.out, influx: a.influx, log: (l) => console.error(`${stamp()} ${l}`) });
    printOutcome(res, t0);
  },
};

export const resumeCommand: CommandModule<object, { runDir: string; influx?: string; 'retry-failed': boolean }> = {
  command: 'resume <runDir>',
  describe: 'continue a campaign after Ctrl-C, a crash or kill -9: done units are kept, an interrupted one is redone',
  builder: (y) =>
    y
      .positional('runDir', { type: 'string', demandOption: true })
      .option('retry-failed', { type: 'boolean', default: false, describe: 'also retry units that failed' })
      .option('influx', { type: 'string', describe: 'stream samples to InfluxDB 1.x' }) as Argv<{
      runDir: string;
      influx?: string;
      'retry-failed': boolean;
    }>,
  handler: async (a) => {
    const t0 = Date.now();
    const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
    const res = await resumeExperiment({
      runDir: a.runDir,
      influx: a.influx,
      retryFailed: a['retry-failed'],
      log: (l) => console.error(`${stamp()} ${l}`),
    });
    printOutcome(res, t0);
  },
};

function printOutcome(res: RunResult, t0: number): void {
  const wall = (Date.now() - t0) / 1000;
  if (res.records.length) console.log(summaryTable(res.records));
  const n = res.records.length;
  const c = counts(res.state);
  console.log(
    `\n${n} migrations (${res.records.filter((r) => r.status === 'completed').length} completed) in ${wall.toFixed(0)} s (${((n / wall) * 60).toFixed(1)} per minute)`,
  );
  console.log(`units: ${c.done} done, ${c.failed} failed, ${c.pending + c.running} left of ${res.state.units.length}`);
  console.log(`run directory: ${res.dir}`);
  if (res.records.some((r) => r.status !== 'completed') || c.failed > 0) process.exitCode = 1;
}
