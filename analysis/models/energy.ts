/**
 * Energy model of a migration (Liu et al., used by mVM): E = alpha * V + beta,
 * V = transferred MB. Least squares with R^2, residuals, and percentile
 * bootstrap confidence intervals (seeded, so reruns give the same numbers).
 */
import { bootstrapOlsCi } from './energy-bootstrap.ts';
import { fitLine } from '../stats/regression.ts';
import { observations, type Migration } from '../rundir.ts';
import { numericOrder } from '../order.ts';

/** mVM's published calibration, for reference in reports. */
export const MVM_ENERGY = { alpha: 0.512, beta: 20.165 } as const;

export interface Interval {
  low: number;
  high: number;
}

export interface EnergyFit {
  group: string;
  n: number;
  /** J per MB transferred. */
  alpha: number;
  /** J fixed cost per migration. */
  beta: number;
  r2: number;
  alphaCi: Interval;
  betaCi: Interval;
  residuals: { id: string; mb: number; energy: number; residual: number }[];
}

export interface EnergyPoint {
  id: string;
  mb: number;
  energy: number;
}

export function fitEnergyPoints(
  group: string,
  pts: readonly EnergyPoint[],
  opts: { seed?: number; replicates?: number } = {},
): EnergyFit | null {
  if (pts.length < 3) return null;
  const xs = pts.map((p) => p.mb),
    ys = pts.map((p) => p.energy);
  if (new Set(xs).size < 2) return null;
  const line = fitLine(xs, ys);
  const X = Float64Array.from(xs),
    Y = Float64Array.from(ys);
  // bootstrapCi over olsIndexed, fused (see energy-bootstrap.ts)
  const ci = bootstrapOlsCi(X, Y, { seed: opts.seed ?? 42, replicates: opts.replicates ?? 1000 });
  const nan = { low: NaN, high: NaN };
  return {
    group,
    n: pts.length,
    alpha: line.slope,
    beta: line.intercept,
    r2: line.r2,
    alphaCi: ci[0] ?? nan,
    betaCi: ci[1] ?? nan,
    residuals: pts.map((p) => ({ ...p, residual: p.energy - (line.slope * p.mb + line.intercept) })),
  };
}

export type EnergyGrouping = 'pooled' | 'per-workload';

export interface EnergyReport {
  fits: EnergyFit[];
  /** Why there is no fit (no energy measured, too few points), when fits is empty. */
  note?: string;
}

/** Fits the energy model over completed migrations with energy and transferred bytes. */
export function fitEnergy(migrations: readonly Migration[], grouping: EnergyGrouping = 'pooled', seed = 42): EnergyReport {
  const obs = observations(migrations);
  const usable = obs.filter((m) => m.energy_j !== null && m.transferred_bytes !== null);
  if (usable.length === 0) {
    return {
      fits: [],
      note: obs.length === 0 ? 'no completed migrations' : 'no migration has an energy figure (no power source in this run)',
    };
  }
  const groups = new Map<string, EnergyPoint[]>();
  for (const m of usable) {
    const g = grouping === 'pooled' ? 'all' : m.workload || '(none)';
    let arr = groups.get(g);
    if (!arr) groups.set(g, (arr = []));
    arr.push({ id: m.id, mb: m.transferred_bytes! / 1e6, energy: m.energy_j! });
  }
  const fits: EnergyFit[] = [];
  for (const [g, pts] of [...groups].sort(([a], [b]) => numericOrder(a, b))) {
    const f = fitEnergyPoints(g, pts, { seed });
    if (f) fits.push(f);
  }
  return fits.length ? { fits } : { fits, note: 'too few migrations with energy (need 3 with distinct volumes per group)' };
}
