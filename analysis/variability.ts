/**
 * Variability of a response across treatments, as in Salfner et al.'s
 * Table II, plus per-treatment 95 % t intervals, the main effect of each
 * factor (mean response per level and the spread between levels) and the
 * interaction of each pair of factors, each F-tested against the variance
 * within treatments (twofactor-interaction.ts).
 */
import { max, mean, min, sd } from './stats/descriptive.ts';
import { meanCi } from './stats/tdist.ts';
import { levelsOf, observations, type Level, type NumericMetric, type RunDir } from './rundir.ts';
import { levelLabel } from './twofactor.ts';
import { interaction, mainEffectTest, pureError, type FTest, type Interaction, type PureError } from './twofactor-interaction.ts';
import { numericOrder } from './order.ts';

export interface TreatmentSummary {
  treatment: string;
  levels: Record<string, Level>;
  n: number;
  mean: number;
  sd: number;
  ciLow: number;
  ciHigh: number;
}

export interface MainEffect {
  factor: string;
  levels: { level: Level; n: number; mean: number }[];
  /** Largest minus smallest level mean. */
  spread: number;
  /** Largest over smallest level mean. */
  ratio: number;
  /** The level means' spread against the within-treatment variance; null with one level or no repetitions. */
  test: FTest | null;
}

export interface VariabilityTable {
  metric: NumericMetric;
  n: number;
  overallMean: number;
  /** max:min of treatment means. */
  treatmentMeansRatio: number;
  /** max:min over all measurements. */
  allRatio: number;
  maxWithinSd: number;
  overallSd: number;
  perTreatment: TreatmentSummary[];
  mainEffects: MainEffect[];
  /** Every pair of factors varied (two or more levels each), in the spec's order. */
  interactions: Interaction[];
  /** The error the effects are tested against: repetitions around their treatment means. */
  pureError: PureError;
}

/** Values of one response per treatment, observations only. */
export function valuesByTreatment(run: RunDir, metric: NumericMetric): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of observations(run.migrations)) {
    const v = m[metric];
    if (v === null) continue;
    let arr = out.get(m.treatment);
    if (!arr) out.set(m.treatment, (arr = []));
    arr.push(v);
  }
  return out;
}

export function variabilityTable(run: RunDir, metric: NumericMetric): VariabilityTable | null {
  const byT = valuesByTreatment(run, metric);
  if (byT.size === 0) return null;
  const levels = levelsOf(run);
  const all = [...byT.values()].flat();
  const perTreatment: TreatmentSummary[] = [...byT].map(([treatment, xs]) => {
    const ci = meanCi(xs);
    return { treatment, levels: levels.get(treatment) ?? {}, n: xs.length, mean: ci.mean, sd: sd(xs), ciLow: ci.low, ciHigh: ci.high };
  });
  perTreatment.sort((a, b) => numericOrder(a.treatment, b.treatment));
  const tMeans = perTreatment.map((t) => t.mean);
  const withinSds = perTreatment.map((t) => t.sd).filter(Number.isFinite);
  const err = pureError(byT);
  const mainEffects: MainEffect[] = [];
  for (const factor of Object.keys(run.manifest.factors)) {
    const groups = new Map<string, { level: Level; xs: number[] }>();
    for (const [t, xs] of byT) {
      const lv = levels.get(t)?.[factor];
      if (lv === undefined) continue;
      const key = JSON.stringify(lv);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { level: lv, xs: [] }));
      g.xs.push(...xs);
    }
    if (groups.size === 0) continue;
    // Levels in the spec's order (e.g. 100mbit before 1000mbit), unknown ones last.
    const order = (run.manifest.factors[factor] ?? []).map((l) => JSON.stringify(l));
    const rank = (l: Level) => {
      const i = order.indexOf(JSON.stringify(l));
      return i < 0 ? order.length : i;
    };
    const lvls = [...groups.values()]
      .map((g) => ({ level: g.level, n: g.xs.length, mean: mean(g.xs) }))
      .sort((x, y) => rank(x.level) - rank(y.level));
    const ms = lvls.map((l) => l.mean);
    mainEffects.push({ factor, levels: lvls, spread: max(ms) - min(ms), ratio: max(ms) / min(ms), test: mainEffectTest(lvls, err) });
  }
  const varied = Object.entries(run.manifest.factors).filter(([, ls]) => ls.length >= 2);
  const interactions: Interaction[] = [];
  for (let i = 0; i < varied.length; i++)
    for (let j = i + 1; j < varied.length; j++) {
      const [a, aLevels] = varied[i],
        [b, bLevels] = varied[j];
      const obs: { a: string; b: string; y: number }[] = [];
      for (const [t, xs] of byT) {
        const lv = levels.get(t);
        if (lv?.[a] === undefined || lv[b] === undefined) continue;
        for (const y of xs) obs.push({ a: levelLabel(lv[a]), b: levelLabel(lv[b]), y });
      }
      interactions.push(interaction(a, b, aLevels.map(levelLabel), bLevels.map(levelLabel), obs, err));
    }
  return {
    metric,
    n: all.length,
    overallMean: mean(all),
    treatmentMeansRatio: max(tMeans) / min(tMeans),
    allRatio: max(all) / min(all),
    maxWithinSd: withinSds.length ? max(withinSds) : NaN,
    overallSd: sd(all),
    perTreatment,
    mainEffects,
    interactions,
    pureError: err,
  };
}

/** The responses of Table II: migration time and each downtime. */
export const VARIABILITY_METRICS: NumericMetric[] = ['total_ms', 'downtime_reported_ms', 'downtime_event_ms', 'downtime_observed_ms'];
