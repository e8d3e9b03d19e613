/**
 * Calibration: hot/cold parameters per workload (from its D(t) trace, else
 * from durations at two or more bandwidths), the measured memory in use per
 * workload, and the energy model, from the migrations of calibration runs.
 * Pure: the caller reads the run directories.
 */
import { median } from '../stats/descriptive.ts';
import { fitHotColdCurve, fitHotColdFromDurations, type CurvePoint } from '../models/hotcold.ts';
import { mbitToMiBps } from '../models/duration.ts';
import { fitEnergyPoints, type EnergyFit, type EnergyPoint } from '../models/energy.ts';
import { DEFAULT_SYNC_S } from '../models/precopy.ts';
import { PARAMS_VERSION, type ParamsT } from './params.ts';
import type { PredictInput } from './predict.ts';

/** htb/tbf shaping delivers ~95.6 % of the nominal rate as TCP goodput (DESIGN.md, measured). */
export const DEFAULT_GOODPUT = 0.956;
/** An energy figure needs power readings over this share of its migration to calibrate. */
export const MIN_ENERGY_COVERAGE = 0.8;

export interface CalibrationMigration extends PredictInput {
  transferred_bytes: number | null;
  energy_j: number | null;
  energy_coverage: number | null;
  partial: boolean;
  /** Span of its plan action (executor clock), ms: what the harness spent around QEMU's total time. */
  plan_span_ms?: number | null;
}

export interface CalibrationRun {
  runDir: string;
  name: string;
  specHash: string | null;
  migrations: CalibrationMigration[];
  /** D(t) points per workload label (samples 'dirty_trace'). */
  curves: Map<string, CurvePoint[]>;
}

export interface FitOptions {
  goodput?: number;
  syncS?: number;
  now?: Date;
  /**
   * An energy fit already made in the same analysis (analyzeRun's pooled
   * fit, seed 42): used in place of fitting again when its points are
   * exactly the ones to fit (same ids, volumes and energies in the same
   * order), since fitEnergyPoints would return the same fit.
   */
  energyFit?: EnergyFit;
  /** false: no energy model (params.energy empty), for a fit whose hot/cold parameters alone are used (validation folds). */
  energy?: boolean;
}

export interface FitResult {
  params: ParamsT;
  /** Energy figures left out for thin power coverage. */
  lowCoverage: number;
}

export function fitParams(runs: readonly CalibrationRun[], o: FitOptions = {}): FitResult {
  const goodput = o.goodput ?? DEFAULT_GOODPUT;
  const byDuration = new Map<string, Set<string>>(runs.map((r) => [r.runDir, new Set<string>()]));
  const byEnergy = new Map<string, Set<string>>(runs.map((r) => [r.runDir, new Set<string>()]));
  const traced = new Map<string, Set<string>>(runs.map((r) => [r.runDir, new Set<string>()]));
  const completed = runs.flatMap((r) => r.migrations.filter((m) => m.status === 'completed' && !m.partial).map((m) => ({ run: r, m })));
  const workloads = new Set<string>([...runs.flatMap((r) => [...r.curves.keys()]), ...completed.map((x) => x.m.workload)]);
  const hotcold: ParamsT['hotcold'] = [];
  for (const w of [...workloads].sort()) {
    const mine = completed.filter((x) => x.m.workload === w);
    const mus = mine.map((x) => x.m.mu_mib).filter((v): v is number => v !== null);
    const pts = runs.flatMap((r) => r.curves.get(w) ?? []);
    let fit = pts.length ? fitHotColdCurve(pts) : null;
    if (fit) {
      // the trace calibrated it, not the durations: those stay available for validation
      for (const r of runs) if (r.curves.has(w)) traced.get(r.runDir)!.add(w);
    } else {
      const obs = mine
        .filter((x) => x.m.link_rate_mbit !== null && x.m.total_ms !== null && (x.m.mu_mib ?? x.m.memory_mib) !== null)
        .map((x) => ({
          bw: mbitToMiBps(x.m.link_rate_mbit!, goodput),
          mu: (x.m.mu_mib ?? x.m.memory_mib)!,
          D: (x.m.downtime_limit_ms ?? 300) / 1000,
          d: x.m.total_ms! / 1000,
        }));
      fit = fitHotColdFromDurations(obs);
      if (fit) for (const x of mine) byDuration.get(x.run.runDir)!.add(x.m.id);
    }
    if (!fit) continue;
    hotcold.push({
      workload: w,
      HPs: fit.HPs,
      HPd: fit.HPd,
      CPr: fit.CPr,
      HPr: fit.HPr,
      r2: Number.isFinite(fit.r2) ? fit.r2 : null,
      n: fit.n,
      method: fit.method,
      mu_mib: mus.length ? median(mus) : null,
    });
  }
  let lowCoverage = 0;
  const energyPts = completed.filter((x) => {
    if (x.m.energy_j === null || x.m.transferred_bytes === null) return false;
    if (x.m.energy_coverage !== null && x.m.energy_coverage < MIN_ENERGY_COVERAGE) {
      lowCoverage++;
      return false;
    }
    return true;
  });
  const energy: ParamsT['energy'] = [];
  const pts = energyPts.map((x) => ({ id: x.m.id, mb: x.m.transferred_bytes! / 1e6, energy: x.m.energy_j! }));
  const ef = o.energy === false ? null : o.energyFit && samePoints(o.energyFit, pts) ? o.energyFit : fitEnergyPoints('all', pts);
  if (ef) {
    for (const x of energyPts) byEnergy.get(x.run.runDir)!.add(x.m.id);
    const ci = (i: { low: number; high: number }) => ({
      low: Number.isFinite(i.low) ? i.low : null,
      high: Number.isFinite(i.high) ? i.high : null,
    });
    energy.push({
      group: 'all',
      alpha: ef.alpha,
      beta: ef.beta,
      alpha_ci: ci(ef.alphaCi),
      beta_ci: ci(ef.betaCi),
      r2: Number.isFinite(ef.r2) ? ef.r2 : null,
      n: ef.n,
    });
  }
  const setups = completed.map((x) => x.m.setup_ms).filter((v): v is number => v !== null && v >= 0);
  const overheads = completed
    .filter((x) => x.m.plan_span_ms != null && x.m.total_ms !== null)
    .map((x) => Math.max(0, x.m.plan_span_ms! - x.m.total_ms!));
  return {
    params: {
      migbench_params: PARAMS_VERSION,
      created_at: (o.now ?? new Date()).toISOString(),
      goodput,
      sync_s: o.syncS ?? DEFAULT_SYNC_S,
      setup_s: setups.length ? median(setups) / 1000 : null,
      action_overhead_s: overheads.length ? median(overheads) / 1000 : null,
      hotcold,
      energy,
      sources: runs.map((r) => ({
        run_dir: r.runDir,
        name: r.name,
        spec_hash: r.specHash,
        duration_migrations: [...byDuration.get(r.runDir)!].sort(),
        energy_migrations: [...byEnergy.get(r.runDir)!].sort(),
        traced_workloads: [...traced.get(r.runDir)!].sort(),
      })),
    },
    lowCoverage,
  };
}

/** Was `fit` made by fitEnergyPoints('all', pts) with the default seed and replicates (its group, and its points in order)? */
function samePoints(fit: EnergyFit, pts: readonly EnergyPoint[]): boolean {
  const r = fit.residuals;
  if (fit.group !== 'all' || r.length !== pts.length) return false;
  for (let i = 0; i < pts.length; i++)
    if (r[i].id !== pts[i].id || !Object.is(r[i].mb, pts[i].mb) || !Object.is(r[i].energy, pts[i].energy)) return false;
  return true;
}
