/**
 * Migration-plan metrics (Kherbache et al.'s Table 1) and mVM's comparison
 * against sequential execution: per-migration slowdown and plan completion
 * speedup, as CDFs.
 */
import { ecdf, max, mean, min, sd } from './stats/descriptive.ts';
import { levelsOf, observations, type Migration, type RunDir } from './rundir.ts';
import { numericOrder } from './order.ts';

export interface PlanSummary {
  treatment: string;
  label: string;
  reps: number;
  /** Mean over repetitions of first action start -> last action end, s. */
  completionS: number;
  meanDurationS: number;
  sdDurationS: number;
  /**
   * Mean over repetitions of the energy above idle of the plan's hosts over
   * the plan's window (analysis/plan-energy.ts), J; null without power readings
   * covering every repetition.
   */
  energyJ: number | null;
  /** Peak of the summed host power during the treatment, W (null without power). */
  peakPowerW: number | null;
}

export interface SpeedupCurves {
  label: string;
  slowdown: { value: number; p: number }[];
  speedup: { value: number; p: number }[];
}

export interface PlanAnalysis {
  plans: PlanSummary[];
  curves: SpeedupCurves[];
  /** Gantt bars of one repetition per treatment (ms from plan start). */
  gantt: { treatment: string; label: string; vm: string; startS: number; endS: number }[];
  note?: string;
}

function isPlanFactor(path: string): boolean {
  return /(^|\.)plan(\.|$|\[)/.test(path);
}

function span(m: Migration): { start: number; end: number } | null {
  const start = m.plan?.start_ms ?? (m.t_cmd ? Date.parse(m.t_cmd) : NaN);
  const end = m.plan?.end_ms ?? (m.t_done ? Date.parse(m.t_done) : m.total_ms !== null ? start + m.total_ms : NaN);
  return Number.isFinite(start) && Number.isFinite(end) ? { start, end } : null;
}

function planLabel(run: RunDir, treatment: string, ms: Migration[]): string {
  const lv = levelsOf(run).get(treatment) ?? {};
  const extra = Object.entries(lv)
    .filter(([k]) => isPlanFactor(k) && !k.endsWith('kind'))
    .map(([k, v]) => `${k.split('.').pop()}=${v}`);
  return [ms[0]?.plan?.kind ?? 'plan', ...extra].join(' ');
}

/** Key of a treatment's levels without plan factors: treatments that differ only by plan. */
function scenarioKey(levels: Record<string, unknown>): string {
  return JSON.stringify(
    Object.entries(levels)
      .filter(([k]) => !isPlanFactor(k))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

/** Completion time (ms) per "treatment|rep" from plans.jsonl; the latest attempt wins (a redone unit). */
function completionFromPlans(run: RunDir): Map<string, number> {
  const best = new Map<string, { attempt: number; ms: number }>();
  for (const p of run.plans) {
    if (p.completion_ms === null) continue;
    const key = `${p.treatment}|${p.rep}`;
    const cur = best.get(key);
    if (!cur || p.attempt >= cur.attempt) best.set(key, { attempt: p.attempt, ms: p.completion_ms });
  }
  return new Map([...best].map(([k, v]) => [k, v.ms]));
}

/** `planEnergyJ`: each executed plan's energy keyed "treatment|rep" (planEnergies), null where unknown. */
export function analyzePlans(
  run: RunDir,
  peakPowerByTreatment: Map<string, number> = new Map(),
  planEnergyJ: ReadonlyMap<string, number | null> = new Map(),
): PlanAnalysis {
  const obs = observations(run.migrations).filter((m) => m.plan);
  if (obs.length === 0) return { plans: [], curves: [], gantt: [], note: 'no migration belongs to a plan' };
  const byT = new Map<string, Migration[]>();
  for (const m of obs) {
    let a = byT.get(m.treatment);
    if (!a) byT.set(m.treatment, (a = []));
    a.push(m);
  }
  const plans: PlanSummary[] = [];
  const planCompletion = completionFromPlans(run);
  const completionByTRep = new Map<string, Map<number, number>>();
  const gantt: PlanAnalysis['gantt'] = [];
  for (const [t, ms] of byT) {
    const reps = new Map<number, Migration[]>();
    for (const m of ms) {
      let a = reps.get(m.rep);
      if (!a) reps.set(m.rep, (a = []));
      a.push(m);
    }
    const completions = new Map<number, number>();
    const energies: number[] = [];
    for (const [rep, rms] of reps) {
      // the executor's completion time (plans.jsonl) where recorded, else the span of the migrations
      const recorded = planCompletion.get(`${t}|${rep}`);
      const spans = rms.map(span).filter((s): s is { start: number; end: number } => s !== null);
      if (recorded !== undefined) completions.set(rep, recorded / 1000);
      else if (spans.length) completions.set(rep, (max(spans.map((s) => s.end)) - min(spans.map((s) => s.start))) / 1000);
      const e = planEnergyJ.get(`${t}|${rep}`);
      if (typeof e === 'number') energies.push(e);
    }
    completionByTRep.set(t, completions);
    const durations = ms
      .map((m) => m.total_ms)
      .filter((x): x is number => x !== null)
      .map((x) => x / 1000);
    const label = planLabel(run, t, ms);
    plans.push({
      treatment: t,
      label,
      reps: reps.size,
      completionS: mean([...completions.values()]),
      meanDurationS: mean(durations),
      sdDurationS: sd(durations),
      // every repetition's, or none: a mean over some would hide the missing ones
      energyJ: energies.length && energies.length === reps.size ? mean(energies) : null,
      peakPowerW: peakPowerByTreatment.get(t) ?? null,
    });
    const firstRep = Math.min(...reps.keys());
    const rms = reps.get(firstRep)!;
    const t0 = min(
      rms
        .map(span)
        .filter((s) => s !== null)
        .map((s) => s!.start),
    );
    for (const m of rms) {
      const s = span(m);
      if (s) gantt.push({ treatment: t, label, vm: m.vm, startS: (s.start - t0) / 1000, endS: (s.end - t0) / 1000 });
    }
  }
  plans.sort((a, b) => numericOrder(a.treatment, b.treatment));

  // Slowdown/speedup against the sequential treatment of the same scenario.
  const levels = levelsOf(run);
  const seqByScenario = new Map<string, string>();
  for (const [t, ms] of byT) if (ms[0].plan?.kind === 'sequential') seqByScenario.set(scenarioKey(levels.get(t) ?? {}), t);
  const curves: SpeedupCurves[] = [];
  for (const [t, ms] of byT) {
    if (ms[0].plan?.kind === 'sequential') continue;
    const seqT = seqByScenario.get(scenarioKey(levels.get(t) ?? {}));
    if (!seqT) continue;
    const seqDur = new Map<string, number[]>();
    for (const m of byT.get(seqT)!) if (m.total_ms !== null) (seqDur.get(m.vm) ?? seqDur.set(m.vm, []).get(m.vm)!).push(m.total_ms);
    const slow = ms.flatMap((m) => {
      const base = seqDur.get(m.vm);
      return base && m.total_ms !== null ? [m.total_ms / mean(base)] : [];
    });
    const seqCompletion = mean([...(completionByTRep.get(seqT)?.values() ?? [])]);
    const speed = [...(completionByTRep.get(t)?.values() ?? [])].map((c) => seqCompletion / c);
    curves.push({ label: planLabel(run, t, ms), slowdown: ecdf(slow), speedup: ecdf(speed) });
  }
  return { plans, curves, gantt, note: curves.length ? undefined : 'no sequential treatment to compare plans against' };
}
