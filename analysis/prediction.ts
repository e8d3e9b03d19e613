/**
 * Predicts each measured migration with mVM's duration model from its
 * workload's hot/cold parameters and its shaped link rate, and reports
 * predicted vs observed with the error distribution.
 */
import { quantile } from './stats/descriptive.ts';
import { fitHotColdCurve, fitHotColdFromDurations, type CurvePoint, type HotColdFit } from './models/hotcold.ts';
import { mbitToMiBps, predictDuration, type HotColdParams } from './models/duration.ts';
import { observations, type Migration } from './rundir.ts';
import { numericOrder } from './order.ts';

/** htb/tbf shaping delivers ~95.6 % of the nominal rate as TCP goodput (DESIGN.md, measured). */
export const DEFAULT_GOODPUT = 0.956;

export interface DurationRow {
  id: string;
  treatment: string;
  workload: string;
  bwMiBps: number;
  muMiB: number;
  observedS: number;
  predictedS: number | null;
  converges: boolean;
  /** |predicted - observed| / observed; null when the model says no convergence. */
  relError: number | null;
  note?: string;
}

export interface DurationSummary {
  n: number;
  predicted: number;
  medianRelError: number;
  p90RelError: number;
  nonConvergent: number;
}

export interface WorkloadParams {
  workload: string;
  fit: HotColdFit;
}

export interface DurationReport {
  params: WorkloadParams[];
  rows: DurationRow[];
  summary: DurationSummary;
  note?: string;
}

function conditions(m: Migration, goodput: number) {
  if (m.link_rate_mbit === null || m.memory_mib === null || m.total_ms === null) return null;
  return { bw: mbitToMiBps(m.link_rate_mbit, goodput), mu: m.memory_mib, D: (m.downtime_limit_ms ?? 300) / 1000, d: m.total_ms / 1000 };
}

/**
 * Hot/cold parameters per workload: from its D(t) curve when traced, else
 * from its durations when measured at two or more bandwidths.
 */
export function workloadParams(
  migrations: readonly Migration[],
  curves: Map<string, CurvePoint[]>,
  goodput = DEFAULT_GOODPUT,
): WorkloadParams[] {
  const out: WorkloadParams[] = [];
  const workloads = new Set([
    ...curves.keys(),
    ...observations(migrations)
      .map((m) => m.workload)
      .filter(Boolean),
  ]);
  for (const w of [...workloads].sort(numericOrder)) {
    const pts = curves.get(w);
    let fit = pts ? fitHotColdCurve(pts) : null;
    if (!fit) {
      const obs = observations(migrations)
        .filter((m) => m.workload === w)
        .map((m) => conditions(m, goodput))
        .filter((c) => c !== null);
      fit = fitHotColdFromDurations(obs);
    }
    if (fit) out.push({ workload: w, fit });
  }
  return out;
}

export function predictMigrations(
  migrations: readonly Migration[],
  params: readonly WorkloadParams[],
  goodput = DEFAULT_GOODPUT,
): DurationReport {
  const byW = new Map<string, HotColdParams>(params.map((p) => [p.workload, p.fit]));
  const rows: DurationRow[] = [];
  for (const m of observations(migrations)) {
    const c = conditions(m, goodput);
    const p = byW.get(m.workload);
    if (!c || !p) continue;
    const pr = predictDuration(p, c);
    rows.push({
      id: m.id,
      treatment: m.treatment,
      workload: m.workload,
      bwMiBps: c.bw,
      muMiB: c.mu,
      observedS: c.d,
      predictedS: pr.converges ? pr.d : null,
      converges: pr.converges,
      relError: pr.converges ? Math.abs(pr.d - c.d) / c.d : null,
      note: pr.converges ? undefined : pr.reason,
    });
  }
  const errs = rows.map((r) => r.relError).filter((e): e is number => e !== null);
  const summary = {
    n: rows.length,
    predicted: errs.length,
    medianRelError: quantile(errs, 0.5),
    p90RelError: quantile(errs, 0.9),
    nonConvergent: rows.filter((r) => !r.converges).length,
  };
  const note =
    params.length === 0
      ? 'no hot/cold parameters: no dirty_trace samples and no workload measured at two or more bandwidths'
      : rows.length === 0
        ? 'no completed migration has link rate, memory size and a calibrated workload'
        : undefined;
  return { params: [...params], rows, summary, note };
}
