import type { Argv, CommandModule } from 'yargs';
import { runExperiment } from '../experiment/runner.ts';
import { summaryTable } from '../experiment/summary.ts';

export const runCommand: CommandModule<object, { spec: string; out: string }> = {
  command: 'run <spec>',
  describe: 'run an experiment end to end: testbed, guests, measured migrations, run directory',
  builder: (y) =>
    y.positional('spec', { type: 'string', demandOption: true }).option('out', {
      type: 'string', default: 'runs', describe: 'parent folder of the run directory',
    }) as Argv<{ spec: string; out: string }>,
  handler: async (a) => {
    const t0 = Date.now();
    const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
    const res = await runExperiment({ specFile: a.spec, outDir: a.out, log: (l) => console.error(`${stamp()} ${l}`) });
    const wall = (Date.now() - t0) / 1000;
    console.log(summaryTable(res.records));
    const n = res.records.length;
    console.log(`\n${n} migrations (${res.records.filter((r) => r.status === 'completed').length} completed) in ${wall.toFixed(0)} s (${((n / wall) * 60).toFixed(1)} per minute)`);
    console.log(`run directory: ${res.dir}`);
    if (res.records.some((r) => r.status !== 'completed')) process.exitCode = 1;
  },
};
