/**
 * Nightly comparison of a candidate run against a baseline run. Treatments
 * are matched by their factor levels (ids and order may differ between
 * runs). A metric regresses when the candidate is significantly larger
 * (one-sided Mann-Whitney U) AND its median grew by more than the threshold.
 */
import { writeFileSync } from 'node:fs';
import { UserError, isUserError } from '../harness/util/errors.ts';
import { median } from './stats/descriptive.ts';
import { mannWhitney } from './stats/mannwhitney.ts';
import { loadRunDir, observations, type Level, type Migration, type NumericMetric, type RunDir, NUMERIC_METRICS } from './rundir.ts';

export const DEFAULT_COMPARE_METRICS: NumericMetric[] = [
  'total_ms', 'downtime_reported_ms', 'downtime_event_ms', 'downtime_observed_ms', 'transferred_bytes', 'energy_j',
];

export interface CompareOptions {
  /** Relative change of medians beyond which a significant increase is a regression (0.1 = 10 %). */
  threshold?: number;
  /** Significance level of the one-sided test. */
  alpha?: number;
  metrics?: string[];
}

export type Verdict = 'regression' | 'improvement' | 'ok' | 'skipped';

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
  verdict: Verdict;
  detail: string;
}

export interface CompareResult {
  threshold: number;
  alpha: number;
  rows: CompareRow[];
  regressions: number;
  unmatchedBaseline: string[];
  unmatchedCandidate: string[];
}

function levelKey(levels: Record<string, Level>): string {
  return JSON.stringify(Object.keys(levels).sort().map((k) => [k, levels[k]]));
}

function describeLevels(levels: Record<string, Level>): string {
  const parts = Object.entries(levels).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : '(single treatment)';
}

function checkSettings(o: { threshold: number; alpha: number }): void {
  if (!(o.threshold >= 0)) throw new UserError(`compare threshold must be a non-negative fraction (e.g. 0.1 for 10 %), got ${o.threshold}`);
  if (!(o.alpha > 0 && o.alpha < 1)) throw new UserError(`compare alpha must be between 0 and 1 (e.g. 0.05), got ${o.alpha}`);
}

export function compareRuns(baseline: RunDir, candidate: RunDir, opts: CompareOptions = {}): CompareResult {
  const fromSpec = baseline.manifest.compare ?? {};
  const threshold = opts.threshold ?? fromSpec.threshold ?? 0.1;
  const alpha = opts.alpha ?? fromSpec.alpha ?? 0.05;
  checkSettings({ threshold, alpha });
  const metrics = opts.metrics ?? fromSpec.metrics ?? DEFAULT_COMPARE_METRICS;
  const unknown = metrics.filter((m) => !(NUMERIC_METRICS as readonly string[]).includes(m));
  if (unknown.length) throw new UserError(`unknown compare metric(s) ${unknown.join(', ')}; known: ${NUMERIC_METRICS.join(', ')}`);
  for (const [name, r] of [['baseline', baseline], ['candidate', candidate]] as const) {
    if (r.manifest.treatments.length === 0) throw new UserError(`${name} ${r.dir}: manifest.json lists no treatments, cannot match by factor levels`);
    if (observations(r.migrations).length === 0) throw new UserError(`${name} ${r.dir} has no completed migrations to compare`);
  }
  const candByKey = new Map(candidate.manifest.treatments.map((t) => [levelKey(t.levels), t]));
  const matchedCand = new Set<string>();
  const unmatchedBaseline: string[] = [];
  const rows: CompareRow[] = [];
  const byTreatment = (r: RunDir) => {
    const g = new Map<string, Migration[]>();
    for (const m of observations(r.migrations)) (g.get(m.treatment) ?? g.set(m.treatment, []).get(m.treatment)!).push(m);
    return g;
  };
  const groups = new Map<RunDir, Map<string, Migration[]>>([[baseline, byTreatment(baseline)], [candidate, byTreatment(candidate)]]);
  const values = (r: RunDir, t: string, metric: string): number[] =>
    (groups.get(r)!.get(t) ?? []).map((m) => m[metric as NumericMetric]).filter((v): v is number => v !== null);
  for (const bt of baseline.manifest.treatments) {
    const ct = candByKey.get(levelKey(bt.levels));
    if (!ct) { unmatchedBaseline.push(bt.id); continue; }
    matchedCand.add(ct.id);
    for (const metric of metrics) {
      const b = values(baseline, bt.id, metric), c = values(candidate, ct.id, metric);
      if (b.length === 0 && c.length === 0) continue; // metric not measured in this scenario
      const base = { scenario: describeLevels(bt.levels), levels: bt.levels, baselineTreatment: bt.id, candidateTreatment: ct.id, metric, nBaseline: b.length, nCandidate: c.length };
      if (b.length < 2 || c.length < 2) {
        rows.push({ ...base, medianBaseline: median(b), medianCandidate: median(c), relChange: NaN, p: NaN, verdict: 'skipped', detail: 'fewer than 2 observations on one side' });
        continue;
      }
      const mb = median(b), mc = median(c);
      const rel = mb !== 0 ? (mc - mb) / Math.abs(mb) : mc === mb ? 0 : Infinity;
      const pGreater = mannWhitney(c, b, 'greater').p;
      const pLess = mannWhitney(c, b, 'less').p;
      let verdict: Verdict = 'ok';
      if (pGreater < alpha && rel > threshold) verdict = 'regression';
      else if (pLess < alpha && rel < -threshold) verdict = 'improvement';
      const detail = `median ${fmt(mb)} -> ${fmt(mc)} (${(rel * 100).toFixed(1)} %), p=${pGreater.toPrecision(3)}`;
      rows.push({ ...base, medianBaseline: mb, medianCandidate: mc, relChange: rel, p: pGreater, verdict, detail });
    }
  }
  if (rows.length === 0) {
    throw new UserError(
      `no treatment of ${candidate.dir} matches one of ${baseline.dir} by factor levels; are they runs of the same experiment spec?`,
    );
  }
  const unmatchedCandidate = candidate.manifest.treatments.filter((t) => !matchedCand.has(t.id)).map((t) => t.id);
  return { threshold, alpha, rows, regressions: rows.filter((r) => r.verdict === 'regression').length, unmatchedBaseline, unmatchedCandidate };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toExponential(3) : x.toPrecision(4);
}

export function formatCompareTable(r: CompareResult): string {
  const head = ['verdict', 'metric', 'n', 'median base', 'median cand', 'change', 'p', 'scenario'];
  const body = r.rows.map((x) => [
    x.verdict.toUpperCase(), x.metric, `${x.nBaseline}/${x.nCandidate}`, fmt(x.medianBaseline), fmt(x.medianCandidate),
    Number.isFinite(x.relChange) ? `${(x.relChange * 100).toFixed(1)}%` : '-', Number.isFinite(x.p) ? x.p.toPrecision(3) : '-', x.scenario,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  const out = [line(head), ...body.map(line)];
  out.push(`${r.regressions} regression(s) in ${r.rows.length} comparisons (threshold ${(r.threshold * 100).toFixed(1)} %, alpha ${r.alpha})`);
  if (r.unmatchedBaseline.length) out.push(`baseline treatments without a match: ${r.unmatchedBaseline.join(', ')}`);
  if (r.unmatchedCandidate.length) out.push(`candidate treatments without a match: ${r.unmatchedCandidate.join(', ')}`);
  return out.join('\n');
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** JUnit XML: one testcase per treatment x metric, a failure per regression. */
export function junitXml(r: CompareResult, suiteName = 'migbench compare'): string {
  const skipped = r.rows.filter((x) => x.verdict === 'skipped').length;
  const cases = r.rows.map((x) => {
    const open = `    <testcase classname="${xml(x.scenario)}" name="${xml(x.metric)}">`;
    if (x.verdict === 'regression') return `${open}\n      <failure message="${xml(`regression: ${x.detail}`)}" type="regression">${xml(x.detail)}</failure>\n    </testcase>`;
    if (x.verdict === 'skipped') return `${open}\n      <skipped message="${xml(x.detail)}"/>\n    </testcase>`;
    return `${open}\n      <system-out>${xml(`${x.verdict}: ${x.detail}`)}</system-out>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${r.rows.length}" failures="${r.regressions}">`,
    `  <testsuite name="${xml(suiteName)}" tests="${r.rows.length}" failures="${r.regressions}" skipped="${skipped}">`,
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

/** Loads both runs, compares, prints, writes JUnit; returns 1 on regression, 0 otherwise, 2 on unusable input. */
export function runCompare(baselineDir: string, candidateDir: string, opts: RunCompareOptions = {}): number {
  const print = opts.print ?? ((s: string) => process.stdout.write(s + '\n'));
  const printError = opts.printError ?? ((s: string) => process.stderr.write(`migbench: ${s}\n`));
  try {
    const result = compareRuns(loadRunDir(baselineDir), loadRunDir(candidateDir), opts);
    print(formatCompareTable(result));
    if (opts.junit) writeFileSync(opts.junit, junitXml(result));
    return result.regressions > 0 ? 1 : 0;
  } catch (e) {
    if (isUserError(e)) {
      printError(e.message);
      return 2;
    }
    throw e;
  }
}
