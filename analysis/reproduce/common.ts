/**
 * What every study evaluator shares: the loaded data of a study (one run
 * directory per spec, plus the client samples where a study needs them),
 * condition lookup (factor level or the spec's own value), the statistical
 * tests behind verdicts, and number formatting. Evaluators are pure functions
 * of `StudyData`; loading is in load.ts.
 */
import { parseDuration, parsePercent, parseRate, parseSize } from '../../harness/spec/units.ts';
import type { Finding, FindingTest, Verdict } from '../../harness/store/schema/findings.ts';
import { mannWhitney } from '../stats/mannwhitney.ts';
import { mean, sd } from '../stats/descriptive.ts';
import { tCdf, tQuantile } from '../stats/tdist.ts';
import { observations, type Migration, type RunDir } from '../rundir.ts';
import type { Sample } from '../../harness/store/schema/index.ts';

export type { Finding, Verdict };

/** One spec's run of a study: its run directory and (when loaded) its client samples. */
export interface SpecRun {
  /** The spec's `name` (manifest name), e.g. 'salfner-grid'. */
  name: string;
  run: RunDir;
  /** `workload` samples (op probes: response time and phase); empty unless the study needs them. */
  workload: Sample[];
  /** `power` samples (watts per host; plan energies integrate them); absent or empty without measure.power. */
  power?: Sample[];
}

export interface StudyData {
  runs: SpecRun[];
}

export type Evaluator = (d: StudyData) => Finding[];

export function specRun(d: StudyData, name: string): SpecRun | undefined {
  return d.runs.find((r) => r.name === name);
}

/** Completed, non-partial migrations of one spec's run ([] when it did not run). */
export function obsOf(d: StudyData, name: string): Migration[] {
  const r = specRun(d, name);
  return r ? observations(r.run.migrations) : [];
}

/** A migration with the run it came from (for condition lookup across specs). */
export interface Obs {
  m: Migration;
  run: RunDir;
}

export function obsWithRun(d: StudyData, names: readonly string[]): Obs[] {
  return d.runs.filter((r) => names.includes(r.name)).flatMap((r) => observations(r.run.migrations).map((m) => ({ m, run: r.run })));
}

function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m || cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[m[1]];
    for (const idx of m[2].match(/\d+/g) ?? []) cur = Array.isArray(cur) ? cur[Number(idx)] : undefined;
  }
  return cur;
}

/** A treatment's value at a spec path: its factor level when the path is a factor, else the spec's own value. */
export function condition(run: RunDir, treatment: string, path: string): unknown {
  const t = run.manifest.treatments.find((x) => x.id === treatment);
  if (t && path in t.levels) {
    const v = t.levels[path];
    if (typeof v === 'string' && /^[[{]/.test(v)) {
      try {
        return JSON.parse(v);
      } catch {
        return v;
      }
    }
    return v;
  }
  return at(run.manifest.spec, path);
}

export const asMs = (v: unknown): number | null => (typeof v === 'string' ? parseDuration(v) : typeof v === 'number' ? v : null);
export const asPct = (v: unknown): number | null => (typeof v === 'string' ? parsePercent(v) : typeof v === 'number' ? v : null);
export const asMbit = (v: unknown): number | null => (typeof v === 'string' ? (parseRate(v) ?? NaN) / 1e6 : null);
export const asMiB = (v: unknown): number | null => (typeof v === 'string' ? (parseSize(v) ?? NaN) / 2 ** 20 : null);

/** The workload label's `key=value` fields (workloadLabel: "dirty wset=40MiB period=10ms bpc=1 fill=100%"). */
export function labelFields(label: string): { kind: string; fields: Record<string, string> } {
  const [kind, ...rest] = label.trim().split(/\s+/);
  const fields: Record<string, string> = {};
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i > 0) fields[p.slice(0, i)] = p.slice(i + 1);
  }
  return { kind: kind ?? '', fields };
}

/** Downtime as the guest's service saw it (probe) where measured, else as QEMU reported it. */
export function downtimeMs(m: Migration): number | null {
  return m.downtime_observed_ms ?? m.downtime_reported_ms;
}

export function nums(xs: readonly (number | null | undefined)[]): number[] {
  return xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
}

/** Groups values by a key. */
export function groupBy<T, K>(xs: readonly T[], key: (x: T) => K): Map<K, T[]> {
  const g = new Map<K, T[]>();
  for (const x of xs) {
    const k = key(x);
    const a = g.get(k);
    if (a) a.push(x);
    else g.set(k, [x]);
  }
  return g;
}

export interface Welch {
  /** mean(a) - mean(b) */
  diff: number;
  low: number;
  high: number;
  /** One-sided p of mean(a) > mean(b). */
  pGreater: number;
  df: number;
}

/**
 * Welch's t for the difference of two means with its 95 % CI; null with fewer
 * than 2 values on a side. Two identical constant samples give a zero-width CI.
 */
export function welch(a: readonly number[], b: readonly number[], level = 0.95): Welch | null {
  if (a.length < 2 || b.length < 2) return null;
  const va = sd(a) ** 2 / a.length;
  const vb = sd(b) ** 2 / b.length;
  const diff = mean(a) - mean(b);
  const se = Math.sqrt(va + vb);
  if (se === 0) return { diff, low: diff, high: diff, pGreater: diff > 0 ? 0 : diff < 0 ? 1 : 0.5, df: a.length + b.length - 2 };
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const q = tQuantile(1 - (1 - level) / 2, df);
  return { diff, low: diff - q * se, high: diff + q * se, pGreater: 1 - tCdf(diff / se, df), df };
}

export interface NoEffect {
  verdict: Verdict;
  test: FindingTest;
  margin: number;
  w: Welch | null;
}

/**
 * "X has no effect" as an equivalence check: the 95 % CI of mean(a) - mean(b)
 * inside +-margin -> holds; the CI outside 0 and the difference beyond the
 * margin -> does not hold; otherwise (CI too wide) inconclusive.
 */
export function noEffect(a: readonly number[], b: readonly number[], margin: number): NoEffect {
  const w = welch(a, b);
  if (!w)
    return { verdict: 'inconclusive', margin, w, test: { name: 'welch-equivalence', p: null, detail: 'fewer than 2 values on a side' } };
  const p2 = Math.min(1, 2 * Math.min(w.pGreater, 1 - w.pGreater));
  const detail = `95% CI of the difference [${fmt(w.low)}, ${fmt(w.high)}] against +-${fmt(margin)}`;
  let verdict: Verdict = 'inconclusive';
  if (w.low >= -margin && w.high <= margin) verdict = 'holds';
  else if ((w.low > 0 || w.high < 0) && Math.abs(w.diff) > margin) verdict = 'does not hold';
  return { verdict, margin, w, test: { name: 'welch-equivalence', p: p2, detail } };
}

/**
 * "a is larger than b": one-sided Welch p < alpha (Mann-Whitney's exact p is
 * reported alongside; with 2-3 values a side it cannot reach 0.05).
 */
export function greater(a: readonly number[], b: readonly number[], alpha = 0.05): { holds: boolean | null; test: FindingTest } {
  const w = welch(a, b);
  if (!w) return { holds: null, test: { name: 'welch', p: null, detail: 'fewer than 2 values on a side' } };
  const mw = a.length && b.length ? mannWhitney(a, b, 'greater').p : NaN;
  return {
    holds: w.pGreater < alpha,
    test: { name: 'welch', p: w.pGreater, detail: `one-sided; difference of means ${fmt(w.diff)}; Mann-Whitney p ${fmt(mw)}` },
  };
}

/** A number for text: 3 significant digits, no exponent for everyday sizes. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return Number(x.toPrecision(digits)).toString();
}

export const s = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : `${fmt(ms / 1000)} s`);

export function ratio(a: number, b: number): number | null {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : null;
}

export function meanOrNull(xs: readonly number[]): number | null {
  return xs.length ? mean(xs) : null;
}

/** A finding nothing here measures (yet), with why. */
export function notRun(id: string, claim: string, paper: string, reason: string): Finding {
  return { id, claim, paper, measured: '-', verdict: 'not run', reason, numbers: {}, test: null };
}

/** A finding whose spec produced no completed migration. */
export function noData(id: string, claim: string, paper: string, spec: string): Finding {
  return notRun(id, claim, paper, `no completed migration of spec '${spec}' to evaluate`);
}
