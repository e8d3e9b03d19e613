/**
 * yargs command modules for the analysis commands; the CLI entry registers
 * `analysisCommands`. UserErrors propagate to the CLI (message, exit 2),
 * except in `compare`, which sets process.exitCode itself (0/1/2).
 */
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { redactUrl } from '../harness/util/redact.ts';
import { UserError } from '../harness/util/errors.ts';
import { analyzeRun, energyMigrations } from './analyze.ts';
import { runCompare } from './compare.ts';
import { exportCsv } from './export.ts';
import { fitEnergy } from './models/energy.ts';
import { fitToFile, predictFromFile, predictionTables } from './calibration/commands.ts';
import { allTables, calibrationTable, energyTable, hotColdTable, validationScores, verdictTable } from './report/tables.ts';
import { tableMarkdown } from './report/markdown.ts';
import { writeReport } from './report/write.ts';
import { writeTimeline } from './report/timeline-file.ts';
import { analysisJson } from './json.ts';
import { loadRunDir } from './rundir.ts';

const out = (s: string) => process.stdout.write(s + '\n');

interface RunDirArgs {
  runDir: string;
}
const runDirPositional = <T>(y: Argv<T>) =>
  y.positional('runDir', { type: 'string', demandOption: true, describe: 'run directory (runs/<UTC start>-<name>)' }) as unknown as Argv<
    T & RunDirArgs
  >;

export const analyzeCommand: CommandModule<object, RunDirArgs & { json?: boolean }> = {
  command: 'analyze <runDir>',
  describe: 'Fit the models and print the analysis tables of a run directory (--json: one JSON object, keys in README)',
  builder: (y) =>
    runDirPositional(y).option('json', { type: 'boolean', describe: 'print the analysis as one JSON object' }) as Argv<
      RunDirArgs & { json?: boolean }
    >,
  handler: async (argv) => {
    const run = loadRunDir(resolve(argv.runDir));
    const a = await analyzeRun(run);
    if (argv.json) {
      out(JSON.stringify(analysisJson(run, a), null, 2));
      return;
    }
    for (const t of allTables(run, a).filter((t) => !t.title.startsWith('Per-treatment'))) out(tableMarkdown(t));
  },
};

export const reportCommand: CommandModule<object, RunDirArgs & { out?: string }> = {
  command: 'report <runDir>',
  describe: 'Write an HTML report (inline SVG plots) and a Markdown summary into <runDir>/report/',
  builder: (y) =>
    runDirPositional(y).option('out', { type: 'string', describe: 'output directory (default <runDir>/report)' }) as Argv<
      RunDirArgs & { out?: string }
    >,
  handler: async (argv) => {
    const run = loadRunDir(resolve(argv.runDir));
    const r = await writeReport(run, argv.out ? resolve(argv.out) : join(run.dir, 'report'));
    for (const f of r.figures) if (!f.rendered) out(`figure "${f.title}" omitted: ${f.note}`);
    out(`wrote ${r.html}\nwrote ${r.markdown}`);
  },
};

interface PlotArgs {
  runDir: string;
  migrationId: string;
  out?: string;
}
export const plotCommand: CommandModule<object, PlotArgs> = {
  command: 'plot <runDir> <migrationId>',
  describe:
    'Draw the timeline of one migration: bytes, throughput against the link rate, passes, dirty rate, probe RTT and outage, STOP/RESUME, power',
  builder: (y) =>
    runDirPositional(y)
      .positional('migrationId', { type: 'string', demandOption: true, describe: 'migration id (the id column of migrations.jsonl)' })
      .option('out', {
        type: 'string',
        describe: 'output file (default <runDir>/timeline-<id>.svg); a .png name renders through a headless Chromium',
      }) as unknown as Argv<PlotArgs>,
  handler: async (argv) => {
    const run = loadRunDir(resolve(argv.runDir));
    const { path, timeline } = await writeTimeline(run, argv.migrationId, argv.out ? resolve(argv.out) : undefined);
    for (const [panel, why] of Object.entries(timeline.missing)) out(`panel ${panel}: no data (${why})`);
    out(`wrote ${path}`);
  },
};

type FitModel = 'energy' | 'hotcold' | 'duration';
interface FitArgs {
  runDirs: string[];
  model: FitModel;
  perWorkload?: boolean;
  pooled?: boolean;
  out?: string;
  syncS?: number;
}
export const fitCommand: CommandModule<object, FitArgs> = {
  command: 'fit <runDirs..>',
  describe:
    'Fit one model (energy, hot/cold pages, duration) and print parameters; with --out, calibrate all models from the run directories into params.json',
  builder: (y) =>
    y
      .positional('runDirs', { type: 'string', array: true, demandOption: true, describe: 'run directories (runs/<UTC start>-<name>)' })
      .option('model', {
        choices: ['energy', 'hotcold', 'duration'] as const,
        default: 'energy' as FitModel,
        describe: 'model to fit (without --out)',
      })
      .option('per-workload', { type: 'boolean', describe: 'one energy fit per workload' })
      .option('pooled', { type: 'boolean', describe: 'one energy fit over all migrations (default)' })
      .option('out', {
        type: 'string',
        describe: 'write calibrated parameters (hot/cold per workload, memory in use, energy) and their sources here',
      })
      .option('sync-s', { type: 'number', describe: 'per-sync floor of the QEMU-like model, s (default 0.02)' })
      .conflicts('per-workload', 'pooled') as unknown as Argv<FitArgs>,
  handler: async (argv) => {
    if (argv.out) {
      const { lines } = await fitToFile(argv.runDirs, argv.out, argv.syncS);
      for (const l of lines) out(l);
      return;
    }
    if (argv.runDirs.length !== 1)
      throw new UserError('fit without --out takes one run directory; pass --out params.json to calibrate from several');
    const run = loadRunDir(resolve(argv.runDirs[0]));
    if (argv.model === 'energy') {
      const rep = fitEnergy(energyMigrations(run).migrations, argv.perWorkload ? 'per-workload' : 'pooled');
      if (rep.fits.length === 0) throw new UserError(`energy fit impossible for ${run.dir}: ${rep.note}`);
      out(tableMarkdown(energyTable(rep)));
      return;
    }
    const a = await analyzeRun(run);
    if (argv.model === 'hotcold') out(tableMarkdown(hotColdTable(a)));
    else {
      // durations are scored only on migrations that did not calibrate them
      out(tableMarkdown(calibrationTable(a)));
      out(tableMarkdown(validationScores(a)));
      out(tableMarkdown(verdictTable(a)));
    }
  },
};

interface PredictArgs {
  params: string;
  runDirs: string[];
  json?: boolean;
}
export const predictCommand: CommandModule<object, PredictArgs> = {
  command: 'predict <params> <runDirs..>',
  describe:
    'Predict the migrations of run directories from calibrated parameters (params.json); score each model on held-out migrations only',
  builder: (y) =>
    y
      .positional('params', { type: 'string', demandOption: true, describe: "params.json written by 'migbench fit --out'" })
      .positional('runDirs', { type: 'string', array: true, demandOption: true, describe: 'run directories to predict' })
      .option('json', { type: 'boolean', describe: 'print the result as one JSON object' }) as unknown as Argv<PredictArgs>,
  handler: async (argv) => {
    const r = await predictFromFile(argv.params, argv.runDirs);
    if (argv.json) {
      out(JSON.stringify(r, null, 2));
      return;
    }
    for (const t of predictionTables(r)) out(tableMarkdown(t));
  },
};

interface CompareArgs {
  baseline: string;
  candidate: string;
  junit?: string;
  threshold?: number;
  alpha?: number;
  metrics?: string[];
  failureThreshold?: number;
}
export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <baseline> <candidate>',
  describe: 'Compare a candidate run with a baseline run; exit 1 on a regression (or an untestable effect), 2 on unusable input',
  builder: (y) =>
    y
      .positional('baseline', { type: 'string', demandOption: true, describe: 'baseline run directory' })
      .positional('candidate', { type: 'string', demandOption: true, describe: 'candidate run directory' })
      .option('junit', { type: 'string', describe: 'write JUnit XML here' })
      .option('threshold', {
        type: 'number',
        describe: 'relative change of medians counted as a regression (default: spec compare.threshold or 0.1)',
      })
      .option('alpha', { type: 'number', describe: 'significance level (default: spec compare.alpha or 0.05)' })
      .option('metrics', {
        type: 'string',
        array: true,
        describe: 'metrics to test (default: spec compare.metrics or all timing/size/energy metrics)',
      })
      .option('failure-threshold', {
        type: 'number',
        describe: 'absolute rise of the failed+cancelled fraction counted as a regression (default 0.1)',
      }) as unknown as Argv<CompareArgs>,
  handler: (argv) => {
    process.exitCode = runCompare(resolve(argv.baseline), resolve(argv.candidate), {
      junit: argv.junit ? resolve(argv.junit) : undefined,
      threshold: argv.threshold,
      alpha: argv.alpha,
      metrics: argv.metrics,
      failureThreshold: argv.failureThreshold,
    });
  },
};

export const exportCommand: CommandModule<object, RunDirArgs & { csv?: boolean; influx?: string; out?: string }> = {
  command: 'export <runDir>',
  describe: 'Export migrations.csv and one CSV per sample measurement (--csv), or replay the samples into InfluxDB (--influx URL)',
  builder: (y) =>
    runDirPositional(y)
      .option('csv', { type: 'boolean', describe: 'write CSV files' })
      .option('influx', {
        type: 'string',
        describe: 'InfluxDB 1.x URL, e.g. http://127.0.0.1:8086/migbench (login: MIGBENCH_INFLUX_USER/_PASSWORD)',
      })
      .option('out', { type: 'string', describe: 'output directory for CSV (default <runDir>/csv)' }) as Argv<
      RunDirArgs & { csv?: boolean; influx?: string; out?: string }
    >,
  handler: async (argv) => {
    if (!argv.csv && !argv.influx) throw new UserError('export needs a target: pass --csv and/or --influx URL');
    const run = loadRunDir(resolve(argv.runDir));
    if (argv.csv) for (const p of await exportCsv(run, argv.out ? resolve(argv.out) : join(run.dir, 'csv'))) out(`wrote ${p}`);
    if (argv.influx) {
      const { replayRunDir } = await import('../harness/store/influx.ts'); // the influx client only when used
      const r = await replayRunDir(run.dir, argv.influx);
      out(`replayed ${r.points} points from ${r.files} sample files into ${redactUrl(argv.influx)}`);
    }
  },
};

export const analysisCommands: CommandModule[] = [
  analyzeCommand,
  reportCommand,
  plotCommand,
  fitCommand,
  predictCommand,
  compareCommand,
  exportCommand,
] as unknown as CommandModule[];
