/**
 * Comparison of a candidate run against a baseline run. Treatments are
 * matched by their factor levels (ids and order may differ between runs).
 *
 * Per treatment and metric: a regression is a significant increase
 * (one-sided Mann-Whitney U, p < alpha) of more than `threshold` in the
 * median. When the sample sizes cannot reach alpha at all (3 vs 3: the
 * smallest one-sided p is 1/20) an increase beyond the threshold is not
 * passed silently: it gets the verdict `insufficient` ("insufficient
 * repetitions to test, effect x %") and, like a regression, makes the
 * comparison fail (exit 1), because an untested slowdown is not a pass.
 *
 * Per treatment, failed and cancelled migrations are compared too (Fisher's
 * exact test, one-sided): the candidate failing where the baseline never
 * failed is a regression; otherwise a significant rise of the failure rate by
 * more than `failureThreshold` (absolute) is, and a rise beyond it that the
 * counts cannot test is `insufficient`.
 *
 * Exit codes (runCompare): 0 nothing regressed, 1 a regression or an
 * untestable effect beyond the threshold, 2 unusable input or nothing could
 * be compared (every row skipped), with the reason.
 */
import { writeFileSync } from 'node:fs';
import { UserError, isUserError } from '../harness/util/errors.ts';
import { median } from './stats/descriptive.ts';
import { fisherGreater } from './stats/fisher.ts';
import { mannWhitney, minOneSidedP } from './stats/mannwhitney.ts';
import { loadRunDir, observations, type Level, type Migration, type NumericMetric, type RunDir, NUMERIC_METRICS } from './rundir.ts';

export const DEFAULT_COMPARE_METRICS: NumericMetric[] = [
  'total_ms',
  'downtime_reported_ms',
  'downtime_event_ms',
  'downtime_observed_ms',
  'transferred_bytes',
  'energy_j',
];

export interface CompareOptions {
  /** Relative change of medians beyond which a significant increase is a regression (0.1 = 10 %). */
  threshold?: number;
  /** Significance level of the one-sided tests. */
  alpha?: number;
  metrics?: string[];
  /** Absolute rise of the failed+cancelled fraction counted as a regression (0.1 = 10 points). */
  failureThreshold?: number;
}

/**
 * regression: significant and beyond the threshold. insufficient: beyond the
 * threshold but the sample sizes cannot reach alpha (fails the comparison).
 * skipped: one side has no value of this metric.
 */
export type Verdict = 'regression' | 'insufficient' | 'improvement' | 'ok' | 'skipped';

/** Verdicts that fail a comparison (exit 1). */
export const FAILING_VERDICTS: readonly Verdict[] = ['regression', 'insufficient'];

export interface CompareRow {
  scenario: string;
  levels: Record<string, Level>;
  baselineTreatment: string;
  candidateTreatment: string;
  metric: string;
  nBaseline: number;
  nCandidate: number;
  medianBaseline: number;
  medianCandidate: number;
  relChange: number;
  /** One-sided p-value of "candidate larger". */
  p: number;
  /** Smallest one-sided p-value reachable with nBaseline/nCandidate (the test's power floor). */
  minP: number;
  verdict: Verdict;
  detail: string;
}

export interface FailureCounts {
  /** Migrations recorded (partial ones, redone on resume, excluded). */
  n: number;
  failed: number;
  cancelled: number;
  /** Reason -> count over failed and cancelled migrations. */
  reasons: Record<string, number>;
}

export interface FailureRow {
  scenario: string;
  levels: Record<string, Level>;
  baselineTreatment: string;
  candidateTreatment: string;
  baseline: FailureCounts;
  candidate: FailureCounts;
  rateBaseline: number;
  rateCandidate: number;
  /** Fisher's exact one-sided p of "candidate fails more often". */
  p: number;
  minP: number;
  verdict: Exclude<Verdict, 'skipped'>;
  detail: string;
}

export interface CompareResult {
  threshold: number;
  alpha: number;
  failureThreshold: number;
  rows: CompareRow[];
  failureRows: FailureRow[];
  /** Rows (metric and failure) with verdict 'regression'. */
  regressions: number;
  /** Rows with verdict 'insufficient'. */
  insufficient: number;
  /** Set when no regression was found and nothing could be compared: why (exit 2). */
  problem: string | null;
  unmatchedBaseline: string[];
  unmatchedCandidate: string[];
}

/** Factor levels as canonical JSON: how treatments are matched across runs. */
export function levelKey(levels: Record<string, Level>): string {
  return JSON.stringify(
    Object.keys(levels)
      .sort()
      .map((k) => [k, levels[k]]),
  );
}

export function describeLevels(levels: Record<string, Level>): string {
  const parts = Object.entries(levels).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : '(single treatment)';
}

function checkSettings(o: { threshold: number; alpha: number; failureThreshold: number }): void {
  if (!(o.threshold >= 0)) throw new UserError(`compare threshold must be a non-negative fraction (e.g. 0.1 for 10 %), got ${o.threshold}`);
  if (!(o.alpha > 0 && o.alpha < 1)) throw new UserError(`compare alpha must be between 0 and 1 (e.g. 0.05), got ${o.alpha}`);
  if (!(o.failureThreshold >= 0 && o.failureThreshold < 1)) {
    throw new UserError(`compare failure threshold must be a fraction in [0, 1) (e.g. 0.1 for 10 points), got ${o.failureThreshold}`);
  }
}

/** Fewest repetitions per side whose smallest one-sided p is below alpha. */
export function repetitionsNeeded(alpha: number): number {
  for (let k = 2; k < 200; k++) if (minOneSidedP(k, k) < alpha) return k;
  return 200;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %` : x > 0 ? '+inf %' : String(x));

function compareMetric(
  b: number[],
  c: number[],
  threshold: number,
  alpha: number,
): Pick<CompareRow, 'medianBaseline' | 'medianCandidate' | 'relChange' | 'p' | 'minP' | 'verdict' | 'detail'> {
  const mb = median(b),
    mc = median(c);
  const rel = mb !== 0 ? (mc - mb) / Math.abs(mb) : mc === mb ? 0 : mc > mb ? Infinity : -Infinity;
  const pGreater = mannWhitney(c, b, 'greater').p;
  const pLess = mannWhitney(c, b, 'less').p;
  const minP = minOneSidedP(c.length, b.length);
  const powerless = minP >= alpha;
  let verdict: Verdict = 'ok';
  if (pGreater < alpha && rel > threshold) verdict = 'regression';
  else if (powerless && rel > threshold) verdict = 'insufficient';
  else if (pLess < alpha && rel < -threshold) verdict = 'improvement';
  let detail = `median ${fmt(mb)} -> ${fmt(mc)} (${pct(rel)}), p=${pGreater.toPrecision(3)}, smallest reachable p=${minP.toPrecision(3)}`;
  if (verdict === 'insufficient') {
    detail =
      `insufficient repetitions to test, effect ${pct(rel)}: median ${fmt(mb)} -> ${fmt(mc)}; with ${b.length}/${c.length} ` +
      `repetitions the smallest reachable p is ${minP.toPrecision(3)}, not below alpha ${alpha}; run >= ${repetitionsNeeded(alpha)} per treatment`;
  } else if (powerless && rel < -threshold) {
    detail += `; improvement untestable with ${b.length}/${c.length} repetitions`;
  } else if (powerless) {
    detail += `; the test cannot reach alpha ${alpha} with ${b.length}/${c.length} repetitions, only the effect was checked`;
  }
  return { medianBaseline: mb, medianCandidate: mc, relChange: rel, p: pGreater, minP, verdict, detail };
}

export function failureCounts(migs: readonly Migration[]): FailureCounts {
  const out: FailureCounts = { n: 0, failed: 0, cancelled: 0, reasons: {} };
  for (const m of migs) {
    if (m.partial) continue;
    out.n++;
    if (m.status === 'completed') continue;
    if (m.status === 'failed') out.failed++;
    else out.cancelled++;
    const why = (m.reason ?? m.status).slice(0, 200);
    out.reasons[why] = (out.reasons[why] ?? 0) + 1;
  }
  return out;
}

export function describeFailures(f: FailureCounts): string {
  const bad = f.failed + f.cancelled;
  if (bad === 0) return `0/${f.n} failed`;
  const reasons = Object.entries(f.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([r, k]) => `${r} (${k})`)
    .join('; ');
  return `${f.failed} failed + ${f.cancelled} cancelled of ${f.n}: ${reasons}`;
}

function compareFailures(
  b: FailureCounts,
  c: FailureCounts,
  failureThreshold: number,
  alpha: number,
): Pick<FailureRow, 'rateBaseline' | 'rateCandidate' | 'p' | 'minP' | 'verdict' | 'detail'> {
  const fb = b.failed + b.cancelled,
    fc = c.failed + c.cancelled;
  const rb = b.n ? fb / b.n : 0,
    rc = c.n ? fc / c.n : 0;
  const { p, minP } = fisherGreater(fb, b.n, fc, c.n);
  let verdict: FailureRow['verdict'] = 'ok';
  let why = '';
  if (fc > 0 && fb === 0) {
    verdict = 'regression';
    why = 'the candidate has failures where the baseline had none';
  } else if (rc - rb > failureThreshold && p < alpha) {
    verdict = 'regression';
    why = `failure rate rose by ${pct(rc - rb)} points, p=${p.toPrecision(3)}`;
  } else if (rc - rb > failureThreshold && minP >= alpha) {
    verdict = 'insufficient';
    why = `insufficient repetitions to test, failure rate rose by ${pct(rc - rb)} points; smallest reachable p ${minP.toPrecision(3)}`;
  } else if (rb - rc > failureThreshold && fisherGreater(fc, c.n, fb, b.n).p < alpha) {
    verdict = 'improvement';
  }
  const detail = `baseline ${describeFailures(b)}; candidate ${describeFailures(c)}${why ? `: ${why}` : ''}`;
  return { rateBaseline: rb, rateCandidate: rc, p, minP, verdict, detail };
}

function byTreatment(migs: readonly Migration[]): Map<string, Migration[]> {
  const g = new Map<string, Migration[]>();
  for (const m of migs) (g.get(m.treatment) ?? g.set(m.treatment, []).get(m.treatment)!).push(m);
  return g;
}

export function compareRuns(baseline: RunDir, candidate: RunDir, opts: CompareOptions = {}): CompareResult {
  const fromSpec = baseline.manifest.compare ?? {};
  const threshold = opts.threshold ?? fromSpec.threshold ?? 0.1;
  const alpha = opts.alpha ?? fromSpec.alpha ?? 0.05;
  const failureThreshold = opts.failureThreshold ?? 0.1;
  checkSettings({ threshold, alpha, failureThreshold });
  const metrics = opts.metrics ?? fromSpec.metrics ?? DEFAULT_COMPARE_METRICS;
  const unknown = metrics.filter((m) => !(NUMERIC_METRICS as readonly string[]).includes(m));
  if (unknown.length) throw new UserError(`unknown compare metric(s) ${unknown.join(', ')}; known: ${NUMERIC_METRICS.join(', ')}`);
  for (const [name, r] of [
    ['baseline', baseline],
    ['candidate', candidate],
  ] as const) {
    if (r.manifest.treatments.length === 0)
      throw new UserError(`${name} ${r.dir}: manifest.json lists no treatments, cannot match by factor levels`);
  }
  // A baseline without one completed migration is no reference; a candidate whose migrations all failed is a result (a regression).
  if (observations(baseline.migrations).length === 0)
    throw new UserError(`baseline ${baseline.dir} has no completed migrations to compare against`);
  if (candidate.migrations.length === 0) throw new UserError(`candidate ${candidate.dir} recorded no migrations (did the run start?)`);
  const candByKey = new Map(candidate.manifest.treatments.map((t) => [levelKey(t.levels), t]));
  const matchedCand = new Set<string>();
  const unmatchedBaseline: string[] = [];
  const rows: CompareRow[] = [];
  const failureRows: FailureRow[] = [];
  const allB = byTreatment(baseline.migrations),
    allC = byTreatment(candidate.migrations);
  const obsB = byTreatment(observations(baseline.migrations)),
    obsC = byTreatment(observations(candidate.migrations));
  const values = (g: Map<string, Migration[]>, t: string, metric: string): number[] =>
    (g.get(t) ?? []).map((m) => m[metric as NumericMetric]).filter((v): v is number => v !== null);
  for (const bt of baseline.manifest.treatments) {
    const ct = candByKey.get(levelKey(bt.levels));
    if (!ct) {
      unmatchedBaseline.push(bt.id);
      continue;
    }
    matchedCand.add(ct.id);
    const ids = { scenario: describeLevels(bt.levels), levels: bt.levels, baselineTreatment: bt.id, candidateTreatment: ct.id };
    const fb = failureCounts(allB.get(bt.id) ?? []),
      fc = failureCounts(allC.get(ct.id) ?? []);
    if (fb.n > 0 && fc.n > 0)
      failureRows.push({ ...ids, baseline: fb, candidate: fc, ...compareFailures(fb, fc, failureThreshold, alpha) });
    for (const metric of metrics) {
      const b = values(obsB, bt.id, metric),
        c = values(obsC, ct.id, metric);
      if (b.length === 0 && c.length === 0) continue; // metric not measured in this scenario
      const base = { ...ids, metric, nBaseline: b.length, nCandidate: c.length };
      if (b.length === 0 || c.length === 0) {
        const side = b.length === 0 ? 'baseline' : 'candidate';
        const f = side === 'baseline' ? fb : fc;
        const detail = `no ${metric} value in the ${side}` + (f.failed + f.cancelled > 0 ? ` (${describeFailures(f)})` : '');
        rows.push({
          ...base,
          medianBaseline: median(b),
          medianCandidate: median(c),
          relChange: NaN,
          p: NaN,
          minP: NaN,
          verdict: 'skipped',
          detail,
        });
        continue;
      }
      rows.push({ ...base, ...compareMetric(b, c, threshold, alpha) });
    }
  }
  if (rows.length === 0 && failureRows.length === 0) {
    throw new UserError(
      `no treatment of ${candidate.dir} matches one of ${baseline.dir} by factor levels; are they runs of the same experiment spec?`,
    );
  }
  const all = [...rows, ...failureRows];
  const regressions = all.filter((r) => r.verdict === 'regression').length;
  const insufficient = all.filter((r) => r.verdict === 'insufficient').length;
  let problem: string | null = null;
  if (regressions + insufficient === 0 && rows.every((r) => r.verdict === 'skipped')) {
    const why = [...new Set(rows.map((r) => r.detail))].slice(0, 5).join('; ');
    problem = `nothing could be compared: no metric has values on both sides${why ? ` (${why})` : ''}`;
  }
  const unmatchedCandidate = candidate.manifest.treatments.filter((t) => !matchedCand.has(t.id)).map((t) => t.id);
  return {
    threshold,
    alpha,
    failureThreshold,
    rows,
    failureRows,
    regressions,
    insufficient,
    problem,
    unmatchedBaseline,
    unmatchedCandidate,
  };
}

/** 0 pass, 1 regression or untestable effect, 2 nothing could be compared. */
export function compareExitCode(r: CompareResult): 0 | 1 | 2 {
  if (r.regressions + r.insufficient > 0) return 1;
  return r.problem ? 2 : 0;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toExponential(3) : x.toPrecision(4);
}

function table(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...body.map(line)];
}

export function formatCompareTable(r: CompareResult): string {
  const pcell = (p: number) => (Number.isFinite(p) ? p.toPrecision(3) : '-');
  const out = table(
    ['verdict', 'metric', 'n', 'median base', 'median cand', 'change', 'p', 'min p', 'scenario'],
    r.rows.map((x) => [
      x.verdict.toUpperCase(),
      x.metric,
      `${x.nBaseline}/${x.nCandidate}`,
      fmt(x.medianBaseline),
      fmt(x.medianCandidate),
      Number.isFinite(x.relChange) ? `${(x.relChange * 100).toFixed(1)}%` : '-',
      pcell(x.p),
      pcell(x.minP),
      x.scenario,
    ]),
  );
  if (r.failureRows.length) {
    out.push('');
    out.push(
      ...table(
        ['verdict', 'failed+cancelled base', 'cand', 'p', 'scenario'],
        r.failureRows.map((x) => [
          x.verdict.toUpperCase(),
          `${x.baseline.failed + x.baseline.cancelled}/${x.baseline.n}`,
          `${x.candidate.failed + x.candidate.cancelled}/${x.candidate.n}`,
          pcell(x.p),
          x.scenario,
        ]),
      ),
    );
  }
  for (const x of [...r.rows, ...r.failureRows]) {
    if (x.verdict === 'regression' || x.verdict === 'insufficient')
      out.push(`${x.verdict.toUpperCase()} ${'metric' in x ? x.metric : 'failures'} [${x.scenario}]: ${x.detail}`);
  }
  out.push(
    `${r.regressions} regression(s), ${r.insufficient} untestable effect(s) beyond the threshold in ${r.rows.length + r.failureRows.length} comparisons ` +
      `(threshold ${(r.threshold * 100).toFixed(1)} %, failure threshold ${(r.failureThreshold * 100).toFixed(1)} points, alpha ${r.alpha})`,
  );
  if (r.problem) out.push(r.problem);
  if (r.unmatchedBaseline.length) out.push(`baseline treatments without a match: ${r.unmatchedBaseline.join(', ')}`);
  if (r.unmatchedCandidate.length) out.push(`candidate treatments without a match: ${r.unmatchedCandidate.join(', ')}`);
  return out.join('\n');
}

function xml(s: string): string {
  // Also drops characters XML 1.0 cannot carry (control characters from a reason string).
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '?')
      .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
  );
}

function testcase(scenario: string, name: string, verdict: Verdict, detail: string): string {
  const open = `    <testcase classname="${xml(scenario)}" name="${xml(name)}">`;
  if (verdict === 'regression')
    return `${open}\n      <failure message="${xml(`regression: ${detail}`)}" type="regression">${xml(detail)}</failure>\n    </testcase>`;
  if (verdict === 'insufficient') {
    return `${open}\n      <failure message="${xml(detail)}" type="insufficient-repetitions">${xml(detail)}</failure>\n    </testcase>`;
  }
  if (verdict === 'skipped') return `${open}\n      <skipped message="${xml(detail)}"/>\n    </testcase>`;
  return `${open}\n      <system-out>${xml(`${verdict}: ${detail}`)}</system-out>\n    </testcase>`;
}

/**
 * JUnit XML: one testcase per treatment x metric and one per treatment for
 * failed/cancelled migrations; a <failure> per regression (type
 * "regression") and per untestable effect (type "insufficient-repetitions");
 * "nothing could be compared" is an <error>.
 */
export function junitXml(r: CompareResult, suiteName = 'migbench compare'): string {
  const all = [...r.rows, ...r.failureRows];
  const skipped = r.rows.filter((x) => x.verdict === 'skipped').length;
  const failures = r.regressions + r.insufficient;
  const cases = [
    ...r.rows.map((x) => testcase(x.scenario, x.metric, x.verdict, x.detail)),
    ...r.failureRows.map((x) => testcase(x.scenario, 'failed_or_cancelled', x.verdict, x.detail)),
  ];
  const errors = r.problem ? 1 : 0;
  if (r.problem)
    cases.push(
      `    <testcase classname="comparison" name="comparable">\n      <error message="${xml(r.problem)}" type="nothing-compared"/>\n    </testcase>`,
    );
  const tests = all.length + errors;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${tests}" failures="${failures}" errors="${errors}">`,
    `  <testsuite name="${xml(suiteName)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export interface RunCompareOptions extends CompareOptions {
  junit?: string;
  /** Where the table and messages go (stdout by default). */
  print?: (line: string) => void;
  printError?: (line: string) => void;
}

/** Loads both runs, compares, prints, writes JUnit; returns 0 pass, 1 regression, 2 unusable input or nothing compared. */
export function runCompare(baselineDir: string, candidateDir: string, opts: RunCompareOptions = {}): number {
  const print = opts.print ?? ((s: string) => process.stdout.write(s + '\n'));
  const printError = opts.printError ?? ((s: string) => process.stderr.write(`migbench: ${s}\n`));
  try {
    const result = compareRuns(loadRunDir(baselineDir), loadRunDir(candidateDir), opts);
    print(formatCompareTable(result));
    if (opts.junit) writeFileSync(opts.junit, junitXml(result));
    if (result.problem && compareExitCode(result) === 2) printError(result.problem);
    return compareExitCode(result);
  } catch (e) {
    if (isUserError(e)) {
      printError(e.message);
      return 2;
    }
    throw e;
  }
}
