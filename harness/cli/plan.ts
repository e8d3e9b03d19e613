import type { Argv, CommandModule } from 'yargs';
import type { z } from 'zod';
import { checkExperiment } from '../experiment/treatments.ts';
import { Duration, Rate } from '../spec/schema.ts';
import { UserError } from '../util/errors.ts';
import { estimateModel } from '../plan/estimate.ts';
import { planOf } from '../plan/load.ts';
import { describePlan, formatGantt, formatPlanList } from '../plan/render.ts';
import { simulate } from '../plan/simulate.ts';
import { loadSpec } from '../spec/load.ts';
import { advise } from '../../analysis/calibration/advise.ts';
import { adviseInputFromSpec } from '../../analysis/calibration/advise-spec.ts';
import { adviceJson, adviceTable } from '../../analysis/calibration/advise-table.ts';
import { readParams } from '../../analysis/calibration/params.ts';
import { tableMarkdown } from '../../analysis/report/markdown.ts';

/** `migbench plan show <spec>`: the action list and a Gantt chart of the simulated schedule. */

interface ShowArgs {
  spec: string;
  'unshaped-rate': string;
  boot: string;
  shutdown: string;
  width: number;
  json: boolean;
}

/** An option read with the spec's own quantity schema: same syntax, same bounds. */
function option<T>(schema: z.ZodType<T>, name: string, got: string): T {
  const r = schema.safeParse(got);
  if (!r.success) throw new UserError(`--${name}: ${r.error.issues[0].message}, got '${got}'`);
  return r.data;
}

/** Wider than any terminal; beyond it the chart is only a way to exhaust memory. */
const MAX_WIDTH = 1000;

const showCmd: CommandModule<object, ShowArgs> = {
  command: 'show <spec>',
  describe: "print a spec's migration plan and its estimated schedule (memory / path rate, links shared fairly)",
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true })
      .option('unshaped-rate', { type: 'string', default: '1gbit', describe: 'rate assumed for links the spec does not shape' })
      .option('boot', { type: 'string', default: '30s', describe: 'estimated time to power a host on' })
      .option('shutdown', { type: 'string', default: '10s', describe: 'estimated time to power a host off' })
      .option('width', { type: 'number', default: 60, describe: 'width of the Gantt chart in characters' })
      .option('json', { type: 'boolean', default: false, describe: 'print the graph and schedule as JSON' }) as Argv<ShowArgs>,
  // async so a UserError reaches main's handler as a rejection, like the other commands
  handler: async (a) => {
    const unshapedRateBps = option(Rate, 'unshaped-rate', a['unshaped-rate']).bps;
    const bootMs = option(Duration, 'boot', a.boot).ms;
    const shutdownMs = option(Duration, 'shutdown', a.shutdown).ms;
    if (!(Number.isInteger(a.width) && a.width >= 10 && a.width <= MAX_WIDTH)) {
      throw new UserError(`--width: expected an integer from 10 to ${MAX_WIDTH}, got ${a.width}`);
    }
    // every treatment, as 'run' checks it: a factor level can break the plan too
    const { spec, graph } = planOf(checkExperiment(a.spec, 'plan').spec, a.spec);
    const schedule = simulate(graph, estimateModel(spec, { unshapedRateBps, bootMs, shutdownMs }));
    if (a.json) {
      const items = schedule.items.map((i) => ({ id: i.action.id, start_ms: i.start, end_ms: i.end }));
      console.log(JSON.stringify({ graph, schedule: items, completion_ms: schedule.completionMs }, null, 2));
      return;
    }
    console.log(describePlan(graph));
    console.log(
      `estimate: VM memory sent once over its path, concurrent migrations share each link equally; unshaped links ${a['unshaped-rate']}, boot ${a.boot}, shutdown ${a.shutdown}\n`,
    );
    console.log(formatPlanList(graph, schedule));
    console.log('');
    console.log(formatGantt(schedule, a.width));
  },
};

interface AdviseArgs {
  spec: string;
  params: string;
  'unshaped-rate': string;
  boot: string;
  shutdown: string;
  json: boolean;
}

const adviseCmd: CommandModule<object, AdviseArgs> = {
  command: 'advise <spec>',
  describe:
    'predict completion time, mean migration time and energy of sequential, parallel, capped k and per-server k plans ' +
    "of a spec's moves from calibrated parameters, and pick one",
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true })
      .option('params', { type: 'string', demandOption: true, describe: "params.json written by 'migbench fit <runDir...> --out'" })
      .option('unshaped-rate', { type: 'string', default: '1gbit', describe: 'rate assumed for links the spec does not shape' })
      .option('boot', { type: 'string', default: '30s', describe: 'time to power a host on (plans with boot)' })
      .option('shutdown', { type: 'string', default: '10s', describe: 'time to power a host off (plans with shutdown)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the advice as one JSON object' }) as Argv<AdviseArgs>,
  handler: async (a) => {
    const unshapedRateBps = option(Rate, 'unshaped-rate', a['unshaped-rate']).bps;
    const bootS = option(Duration, 'boot', a.boot).ms / 1000;
    const shutdownS = option(Duration, 'shutdown', a.shutdown).ms / 1000;
    const params = readParams(a.params);
    const { spec } = loadSpec(a.spec);
    // the spec's own plan must hold together before alternatives are compared to it
    const { plan } = planOf(spec, a.spec);
    const { input, notes } = adviseInputFromSpec(spec, params, { unshapedRateBps, bootS, shutdownS, file: a.spec, paramsFile: a.params });
    const advice = advise(input, plan, { file: a.spec });
    if (a.json) {
      console.log(JSON.stringify({ spec: a.spec, params: a.params, ...adviceJson(advice, notes) }, null, 2));
      return;
    }
    console.log(tableMarkdown(adviceTable(advice, notes)));
    for (const n of notes) console.log(`note: ${n}`);
  },
};

export const planCommand: CommandModule = {
  command: 'plan',
  describe: 'inspect migration plans',
  builder: (y) => y.command(showCmd).command(adviseCmd).demandCommand(1, 'name a plan command: show, advise'),
  handler: () => {},
};
