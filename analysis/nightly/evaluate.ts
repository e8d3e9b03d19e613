/**
 * Judges one night against the history: picks the baseline (the pinned
 * night, else the last night that passed), compares the night's run with the
 * baseline's run (analysis/compare.ts: metrics, failure rates, power floor),
 * names environment and spec differences, and runs step detection over the
 * nightly medians of the whole history. Pure apart from reading run
 * directories; the CLI writes the result.
 *
 * Verdict and exit code: pass 0, regression 1 (a regression, an untestable
 * effect beyond the threshold, or failures where the baseline had none),
 * broken 2 (no migration recorded, nothing comparable, baseline unreadable).
 * Step changes found over the history are reported, not a verdict of their
 * own: the pairwise comparison already judged each night when it ran.
 */
import { basename } from 'node:path';
import { isUserError } from '../../harness/util/errors.ts';
import { compareExitCode, compareRuns, DEFAULT_COMPARE_METRICS, type CompareResult } from '../compare.ts';
import { loadRunDir, observations, type NumericMetric, type RunDir } from '../rundir.ts';
import { detectSteps, STEP_DEFAULTS } from './changepoint.ts';
import {
  envChanges,
  findNight,
  isEnvironmentChange,
  nightEnv,
  nightTreatments,
  readPin,
  specChanges,
  type Finding,
  type HistoryChange,
  type Night,
} from './history.ts';

export interface EvaluateOptions {
  threshold?: number;
  alpha?: number;
  failureThreshold?: number;
  /** Step detection settings (threshold defaults to the comparison threshold). */
  minSegment?: number;
  stepAlpha?: number;
}

export interface NightOutcome {
  night: Night;
  compare: CompareResult | null;
  baseline: Night | null;
}

/** The baseline for the next night: the pinned one, else the last night that passed. */
export function chooseBaseline(history: readonly Night[], pinned: string | null): { night: Night | null; pinned: boolean } {
  if (pinned) {
    const n = findNight(history, pinned);
    return { night: n ?? null, pinned: true };
  }
  for (let i = history.length - 1; i >= 0; i--) if (history[i].verdict === 'pass') return { night: history[i], pinned: false };
  return { night: null, pinned: false };
}

/** The metrics the spec compares (its compare.metrics), else the default set. */
export function metricsOf(run: RunDir): NumericMetric[] {
  return (run.manifest.compare?.metrics as NumericMetric[] | undefined) ?? DEFAULT_COMPARE_METRICS;
}

/**
 * Steps in each treatment's nightly medians over the usable nights (broken
 * ones left out), each labelled with what changed on its first night.
 */
export function historyChanges(
  nights: readonly Night[],
  metrics: readonly NumericMetric[],
  opts: { threshold?: number; alpha?: number; minSegment?: number } = {},
): HistoryChange[] {
  const usable = nights.filter((n) => n.verdict !== 'broken');
  const keys = new Map<string, string>();
  for (const n of usable) for (const t of n.treatments) keys.set(t.key, t.scenario);
  const out: HistoryChange[] = [];
  for (const [key, scenario] of keys) {
    for (const metric of metrics) {
      const pts: { night: Night; prev: Night | null; v: number }[] = [];
      let prev: Night | null = null;
      for (const n of usable) {
        const v = n.treatments.find((t) => t.key === key)?.metrics[metric]?.median;
        if (v !== undefined && Number.isFinite(v)) pts.push({ night: n, prev, v });
        prev = n;
      }
      const steps = detectSteps(
        pts.map((p) => p.v),
        { threshold: opts.threshold, alpha: opts.alpha, minSegment: opts.minSegment },
      );
      for (const s of steps) {
        const at = pts[s.index];
        // what changed between the last night before the step and its first night
        const before = pts[s.index - 1].night;
        const coincides = envChanges(before.env, at.night.env).filter(isEnvironmentChange);
        if (before.env.spec_hash && at.night.env.spec_hash && before.env.spec_hash !== at.night.env.spec_hash)
          coincides.push('spec changed');
        out.push({ scenario, metric, night: at.night.id, before: s.before, after: s.after, rel: s.rel, coincides });
      }
    }
  }
  return out;
}

function findingsOf(r: CompareResult): Finding[] {
  const out: Finding[] = [];
  const failing = (v: string) => v === 'regression' || v === 'insufficient';
  for (const x of r.rows)
    if (failing(x.verdict)) out.push({ scenario: x.scenario, metric: x.metric, verdict: x.verdict, detail: x.detail });
  for (const x of r.failureRows) {
    if (failing(x.verdict)) out.push({ scenario: x.scenario, metric: 'failed_or_cancelled', verdict: x.verdict, detail: x.detail });
  }
  return out;
}

function specFileOf(run: RunDir): string | null {
  const f = (run.manifest as unknown as { spec_file?: unknown }).spec_file;
  return typeof f === 'string' ? f : null;
}

type Verdicts = 'verdict' | 'exit_code' | 'baseline' | 'baseline_pinned' | 'env_changes' | 'spec_changes' | 'findings' | 'changes';
/** A night's verdict fields before it is compared with anything (fresh lists: they are filled in place). */
export function unjudged(): Pick<Night, Verdicts> {
  return {
    verdict: 'pass',
    exit_code: 0,
    baseline: null,
    baseline_pinned: false,
    env_changes: [],
    spec_changes: [],
    findings: [],
    changes: [],
  };
}

/** Evaluates `run` as the next night of `history` (history read from `dir`, pin included). */
export function evaluateNight(dir: string, history: readonly Night[], run: RunDir, opts: EvaluateOptions = {}): NightOutcome {
  const night: Night = {
    id: basename(run.dir),
    run_dir: run.dir,
    date: run.manifest.started_at ?? new Date().toISOString(),
    spec_file: specFileOf(run),
    env: nightEnv(run),
    treatments: nightTreatments(run),
    ...unjudged(),
  };
  const threshold = opts.threshold ?? run.manifest.compare?.threshold ?? 0.1;
  const finish = (compare: CompareResult | null, baseline: Night | null): NightOutcome => {
    const metrics = metricsOf(run);
    night.changes = historyChanges([...history, night], metrics, {
      threshold,
      alpha: opts.stepAlpha ?? STEP_DEFAULTS.alpha,
      minSegment: opts.minSegment ?? STEP_DEFAULTS.minSegment,
    });
    return { night, compare, baseline };
  };
  const broken = (reason: string, compare: CompareResult | null = null, baseline: Night | null = null): NightOutcome => {
    Object.assign(night, { verdict: 'broken', exit_code: 2, reason });
    return finish(compare, baseline);
  };
  if (history.some((n) => n.id === night.id))
    return broken(`run ${night.id} is already in the history; each night needs a new run directory`);
  const pin = readPin(dir);
  const { night: base, pinned } = chooseBaseline(history, pin);
  night.baseline = base?.id ?? null;
  night.baseline_pinned = pinned;
  if (run.migrations.length === 0) return broken(`the run recorded no migrations (${run.dir}); see its log and state.json`, null, base);
  if (pinned && !base)
    return broken(`the pinned baseline '${pin}' is not in ${dir}/history.jsonl; pin another with 'migbench baseline ${dir} --set <night>'`);
  if (!base) {
    if (observations(run.migrations).length === 0) return broken('first night: no migration completed, so it cannot serve as the baseline');
    night.reason = 'first night: no baseline yet, this night becomes the baseline';
    return finish(null, null);
  }
  night.env_changes = envChanges(base.env, night.env);
  let baseRun: RunDir;
  try {
    if (!base.run_dir) throw new Error('no run directory recorded');
    baseRun = loadRunDir(base.run_dir);
  } catch (e) {
    return broken(
      `baseline night ${base.id} cannot be read (${(e as Error).message}); pin another with 'migbench baseline ${dir} --set <night>'`,
      null,
      base,
    );
  }
  night.spec_changes = specChanges(baseRun.manifest.spec, run.manifest.spec);
  let compare: CompareResult;
  try {
    compare = compareRuns(baseRun, run, { threshold: opts.threshold, alpha: opts.alpha, failureThreshold: opts.failureThreshold });
  } catch (e) {
    if (isUserError(e)) return broken(`cannot compare with baseline ${base.id}: ${e.message}`, null, base);
    throw e;
  }
  night.findings = findingsOf(compare);
  const code = compareExitCode(compare);
  if (code === 2) return broken(compare.problem ?? 'nothing could be compared', compare, base);
  night.verdict = code === 1 ? 'regression' : 'pass';
  night.exit_code = code;
  return finish(compare, base);
}
