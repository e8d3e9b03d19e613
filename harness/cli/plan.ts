import type { Argv, CommandModule } from 'yargs';
import { parseDuration, parseRate } from '../spec/units.ts';
import { UserError } from '../util/errors.ts';
import { estimateModel } from '../plan/estimate.ts';
import { loadPlan } from '../plan/load.ts';
import { describePlan, formatGantt, formatPlanList } from '../plan/render.ts';
import { simulate } from '../plan/simulate.ts';

/** `migbench plan show <spec>`: the action list and a Gantt chart of the simulated schedule. */

interface ShowArgs {
  spec: string;
  'unshaped-rate': string;
  boot: string;
  shutdown: string;
  width: number;
  json: boolean;
}

function option<T>(value: T | null, name: string, expected: string, got: string): T {
  if (value === null) throw new UserError(`--${name}: expected ${expected}, got '${got}'`);
  return value;
}

const showCmd: CommandModule<object, ShowArgs> = {
  command: 'show <spec>',
  describe: 'print a spec\'s migration plan and its estimated schedule (memory / path rate, links shared fairly)',
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
    const unshapedRateBps = option(parseRate(a['unshaped-rate']), 'unshaped-rate', 'a rate like 1gbit', a['unshaped-rate']);
    const bootMs = option(parseDuration(a.boot), 'boot', 'a duration like 30s', a.boot);
    const shutdownMs = option(parseDuration(a.shutdown), 'shutdown', 'a duration like 10s', a.shutdown);
    if (!(Number.isInteger(a.width) && a.width >= 10)) throw new UserError(`--width: expected an integer >= 10, got ${a.width}`);
    const { spec, graph } = loadPlan(a.spec);
    const schedule = simulate(graph, estimateModel(spec, { unshapedRateBps, bootMs, shutdownMs }));
    if (a.json) {
      console.log(JSON.stringify({ graph, schedule: schedule.items.map((i) => ({ id: i.action.id, start_ms: i.start, end_ms: i.end })), completion_ms: schedule.completionMs }, null, 2));
      return;
    }
    console.log(describePlan(graph));
    console.log(`estimate: VM memory sent once over its path, concurrent migrations share each link equally; unshaped links ${a['unshaped-rate']}, boot ${a.boot}, shutdown ${a.shutdown}\n`);
    console.log(formatPlanList(graph, schedule));
    console.log('');
    console.log(formatGantt(schedule, a.width));
  },
};

export const planCommand: CommandModule = {
  command: 'plan',
  describe: 'inspect migration plans',
  builder: (y) => y.command(showCmd).demandCommand(1, 'name a plan command: show'),
  handler: () => {},
};
