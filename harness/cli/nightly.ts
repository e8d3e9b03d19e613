/**
 * `migbench nightly <spec> --history <dir>`: runs the night, judges it
 * against the baseline and the history (analysis/nightly/evaluate.ts),
 * appends it to <dir>/history.jsonl, writes JUnit and a trend report.
 * Exit 0 pass, 1 regression, 2 unusable input or a broken run (the reason
 * is printed, and a broken night is recorded too: failures are results).
 *
 * `migbench baseline <dir> [--set <night> | --clear]`: shows or pins the
 * baseline night.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { describeFailures, formatCompareTable, junitXml } from '../../analysis/compare.ts';
import { evaluateNight, chooseBaseline, metricsOf, type NightOutcome } from '../../analysis/nightly/evaluate.ts';
import { appendNight, findNight, readHistory, readPin, writePin, type Night } from '../../analysis/nightly/history.ts';
import { headline, writeNightlyReport } from '../../analysis/nightly/report.ts';
import { loadRunDir, type RunDir } from '../../analysis/rundir.ts';
import { DEFAULT_COMPARE_METRICS } from '../../analysis/compare.ts';
import { runExperiment } from '../experiment/runner.ts';
import { UserError, errorMessage, isUserError } from '../util/errors.ts';
import { Interrupted } from '../util/signals.ts';

interface NightlyArgs {
  spec?: string;
  history: string;
  out?: string;
  run?: string;
  junit?: string;
  report?: string;
  threshold?: number;
  alpha?: number;
  failureThreshold?: number;
  inventory?: string;
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** JUnit for a night without a comparison: a first night (one passing case) or a broken one (an error). */
function plainJunit(n: Night): string {
  const body =
    n.verdict === 'broken'
      ? `      <error message="${xml(n.reason ?? 'broken run')}" type="broken-run"/>\n`
      : `      <system-out>${xml(n.reason ?? 'pass')}</system-out>\n`;
  const err = n.verdict === 'broken' ? 1 : 0;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="1" failures="0" errors="${err}">`,
    `  <testsuite name="${xml(`migbench nightly ${n.id}`)}" tests="1" failures="0" errors="${err}" skipped="0">`,
    `    <testcase classname="nightly" name="night">\n${body}    </testcase>`,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** A night whose run could not be read at all (no run directory, unreadable manifest). */
function unreadableNight(id: string, runDir: string | null, reason: string, history: readonly Night[], historyDir: string): Night {
  const base = chooseBaseline(history, readPin(historyDir));
  return {
    id,
    run_dir: runDir,
    date: new Date().toISOString(),
    spec_file: null,
    env: {
      harness_commit: null,
      harness_version: null,
      qemu_version: null,
      host_kernel: null,
      guest_kernel: null,
      accelerator: null,
      hosts: [],
      spec_hash: null,
    },
    treatments: [],
    verdict: 'broken',
    exit_code: 2,
    reason,
    baseline: base.night?.id ?? null,
    baseline_pinned: base.pinned,
    env_changes: [],
    spec_changes: [],
    findings: [],
    changes: [],
  };
}

/** Runs the spec; on a crash after the run directory exists, returns that directory and the error instead of throwing. */
async function runNight(specFile: string, outDir: string): Promise<{ dir: string | null; error: string | null }> {
  mkdirSync(outDir, { recursive: true });
  const before = new Set(readdirSync(outDir));
  const t0 = Date.now();
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
  try {
    const res = await runExperiment({ specFile, outDir, log: (l) => console.error(`${stamp()} ${l}`) });
    return { dir: res.dir, error: null };
  } catch (e) {
    if (e instanceof Interrupted) throw e;
    const fresh = readdirSync(outDir).filter((d) => !before.has(d));
    // an error before anything ran (bad spec, not root, testbed busy) is unusable input: nothing to record
    if (fresh.length === 0) throw e;
    return { dir: join(outDir, fresh.sort()[fresh.length - 1]), error: isUserError(e) ? e.message : `internal error: ${errorMessage(e)}` };
  }
}

export async function nightly(a: NightlyArgs, print: (l: string) => void = (l) => console.log(l)): Promise<number> {
  if (a.inventory !== undefined) {
    throw new UserError(
      'nightly --inventory needs the ssh testbed driver, which this version does not have; run the spec on the local testbed (omit --inventory)',
    );
  }
  if (!!a.spec === !!a.run)
    throw new UserError('nightly needs either a spec to run or --run <runDir> (an existing run directory), not both');
  const historyDir = resolve(a.history);
  mkdirSync(historyDir, { recursive: true });
  const history = readHistory(historyDir); // a damaged history is refused before a night is spent
  readPin(historyDir);

  let runDir: string;
  let runError: string | null = null;
  if (a.run) {
    runDir = resolve(a.run);
  } else {
    const r = await runNight(a.spec!, resolve(a.out ?? join(historyDir, 'runs')));
    runDir = r.dir!;
    runError = r.error;
  }
  let outcome: NightOutcome;
  let run: RunDir | null = null;
  try {
    run = loadRunDir(runDir);
  } catch (e) {
    if (!isUserError(e)) throw e;
    outcome = {
      night: unreadableNight(basename(runDir), existsSync(runDir) ? runDir : null, e.message, history, historyDir),
      compare: null,
      baseline: null,
    };
  }
  if (run) {
    outcome = evaluateNight(historyDir, history, run, { threshold: a.threshold, alpha: a.alpha, failureThreshold: a.failureThreshold });
    if (runError) {
      // the run crashed part-way: what it measured is compared and kept, but the night is broken
      Object.assign(outcome.night, {
        verdict: 'broken',
        exit_code: 2,
        reason: `the run did not finish: ${runError}${outcome.night.reason ? `; ${outcome.night.reason}` : ''}`,
      });
    }
  }
  const { night, compare } = outcome!;
  appendNight(historyDir, night);
  const junit = resolve(a.junit ?? join(historyDir, 'junit.xml'));
  writeFileSync(junit, compare && night.verdict !== 'broken' ? junitXml(compare, `migbench nightly ${night.id}`) : plainJunit(night));
  const metrics = run ? metricsOf(run) : DEFAULT_COMPARE_METRICS;
  const rep = await writeNightlyReport(resolve(a.report ?? join(historyDir, 'report')), { night, history, compare, metrics });
  if (compare) print(formatCompareTable(compare));
  for (const t of night.treatments)
    if (t.failures.failed + t.failures.cancelled > 0) print(`failures [${t.scenario}]: ${describeFailures(t.failures)}`);
  for (const l of headline(night)) print(l);
  print(`history: ${join(historyDir, 'history.jsonl')} (${history.length + 1} nights)\njunit: ${junit}\nreport: ${rep.html}`);
  return night.exit_code;
}

export const nightlyCommand: CommandModule<object, NightlyArgs> = {
  command: 'nightly [spec]',
  describe:
    "run a spec as tonight's regression run, compare it with the baseline night, append it to <history>/history.jsonl; exit 0 pass, 1 regression, 2 broken",
  builder: (y) =>
    y
      .positional('spec', { type: 'string', describe: 'experiment spec to run (e.g. experiments/nightly.yaml)' })
      .option('history', {
        type: 'string',
        demandOption: true,
        describe: 'history folder: history.jsonl, baseline.json, runs/, report/, junit.xml',
      })
      .option('out', { type: 'string', describe: 'parent folder of the run directory (default <history>/runs)' })
      .option('run', { type: 'string', describe: 'record an existing run directory as the night instead of running a spec' })
      .option('junit', { type: 'string', describe: 'JUnit XML output (default <history>/junit.xml)' })
      .option('report', { type: 'string', describe: 'report folder (default <history>/report)' })
      .option('threshold', {
        type: 'number',
        describe: 'relative change of medians counted as a regression (default: spec compare.threshold or 0.1)',
      })
      .option('alpha', { type: 'number', describe: 'significance level (default: spec compare.alpha or 0.05)' })
      .option('failure-threshold', {
        type: 'number',
        describe: 'absolute rise of the failed+cancelled fraction counted as a regression (default 0.1)',
      })
      .option('inventory', { type: 'string', describe: 'ssh inventory (not available yet: refused)' }) as unknown as Argv<NightlyArgs>,
  handler: async (a) => {
    process.exitCode = await nightly(a);
  },
};

export const baselineCommand: CommandModule<object, { history: string; set?: string; clear?: boolean }> = {
  command: 'baseline <history>',
  describe: 'show the baseline night of a nightly history, pin one (--set <night id|#|-1>) or unpin (--clear)',
  builder: (y) =>
    y
      .positional('history', { type: 'string', demandOption: true, describe: 'history folder of migbench nightly' })
      .option('set', {
        type: 'string',
        describe: 'night to pin: its id (run directory name), run directory, or position (1 = first, -1 = last)',
      })
      .option('clear', { type: 'boolean', describe: 'unpin: the last night that passed is the baseline again' })
      .conflicts('set', 'clear') as unknown as Argv<{ history: string; set?: string; clear?: boolean }>,
  handler: (a) => {
    const dir = resolve(a.history);
    if (!existsSync(join(dir, 'history.jsonl')))
      throw new UserError(`${dir} has no history.jsonl; run 'migbench nightly <spec> --history ${a.history}' first`);
    const history = readHistory(dir);
    if (a.set !== undefined) {
      const n = findNight(history, a.set);
      if (!n) throw new UserError(`no night '${a.set}' in ${dir}/history.jsonl; nights: ${history.map((h) => h.id).join(', ') || 'none'}`);
      if (n.verdict === 'broken')
        throw new UserError(`night ${n.id} is broken (${n.reason ?? 'no reason recorded'}); pin a night that ran`);
      writePin(dir, n.id);
      console.log(`baseline pinned: ${n.id} (${n.verdict}, ${n.date})`);
      return;
    }
    if (a.clear) writePin(dir, null);
    const pin = readPin(dir);
    const b = chooseBaseline(history, pin);
    if (pin && !b.night) throw new UserError(`pinned baseline '${pin}' is not in ${dir}/history.jsonl; pin another with --set or --clear`);
    console.log(
      b.night
        ? `baseline: ${b.night.id} (${b.pinned ? 'pinned' : 'last night that passed'}, ${b.night.date})`
        : 'no baseline yet: the next night that passes becomes it',
    );
  },
};
