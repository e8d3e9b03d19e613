/**
 * Hot/cold page parameters (mVM). Two ways to get them:
 *  - from a D(t) curve (dirtied MiB over growing windows): a continuous
 *    two-segment line through the origin with a fitted breakpoint; slope 1
 *    is HPr, the knee is (HPd, HPs), slope 2 is CPr;
 *  - from migration durations measured at several bandwidths: least squares
 *    of the duration model over (HPs, HPd, CPr).
 */
import { nelderMead } from '../stats/neldermead.ts';
import { predictDuration, predictInto, type HotColdParams, type MigrationConditions } from './duration.ts';

export interface CurvePoint {
  /** Window length, s. */
  t: number;
  /** Memory dirtied in the window, MiB. */
  d: number;
}

export interface HotColdFit extends HotColdParams {
  HPr: number;
  n: number;
  r2: number;
  method: 'curve' | 'durations';
}

/** Least squares of d = a*min(t,b) + c*max(t-b,0) for a fixed breakpoint b. */
function fitAtBreak(pts: readonly CurvePoint[], b: number): { a: number; c: number; sse: number } {
  let suu = 0,
    suv = 0,
    svv = 0,
    suy = 0,
    svy = 0;
  for (const p of pts) {
    const u = Math.min(p.t, b),
      v = Math.max(p.t - b, 0);
    suu += u * u;
    suv += u * v;
    svv += v * v;
    suy += u * p.d;
    svy += v * p.d;
  }
  const det = suu * svv - suv * suv;
  let a: number, c: number;
  if (Math.abs(det) < 1e-12 * (suu * svv + 1e-300)) {
    a = suu > 0 ? suy / suu : 0;
    c = 0;
  } else {
    a = (suy * svv - svy * suv) / det;
    c = (svy * suu - suy * suv) / det;
  }
  let sse = 0;
  for (const p of pts) {
    const r = p.d - (a * Math.min(p.t, b) + c * Math.max(p.t - b, 0));
    sse += r * r;
  }
  return { a, c, sse };
}

export function fitHotColdCurve(points: readonly CurvePoint[]): HotColdFit | null {
  const pts = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.d) && p.t > 0);
  const ts = [...new Set(pts.map((p) => p.t))].sort((x, y) => x - y);
  if (ts.length < 4) return null;
  // Grid over the observed windows, then golden-section between neighbours.
  let bestK = 1,
    bestSse = Infinity;
  for (let k = 1; k < ts.length - 1; k++) {
    const { sse } = fitAtBreak(pts, ts[k]);
    if (sse < bestSse) {
      bestSse = sse;
      bestK = k;
    }
  }
  let lo = ts[bestK - 1],
    hi = ts[bestK + 1];
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = hi - g * (hi - lo),
    x2 = lo + g * (hi - lo);
  let f1 = fitAtBreak(pts, x1).sse,
    f2 = fitAtBreak(pts, x2).sse;
  for (let i = 0; i < 80 && hi - lo > 1e-9 * (1 + hi); i++) {
    if (f1 < f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = fitAtBreak(pts, x1).sse;
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = fitAtBreak(pts, x2).sse;
    }
  }
  let b = (lo + hi) / 2;
  let fit = fitAtBreak(pts, b);
  if (bestSse < fit.sse) {
    b = ts[bestK];
    fit = fitAtBreak(pts, b);
  }
  const meanD = pts.reduce((s, p) => s + p.d, 0) / pts.length;
  const sst = pts.reduce((s, p) => s + (p.d - meanD) ** 2, 0);
  return {
    HPs: fit.a * b,
    HPd: b,
    HPr: fit.a,
    CPr: Math.max(0, fit.c),
    n: pts.length,
    r2: sst > 0 ? 1 - fit.sse / sst : 1,
    method: 'curve',
  };
}

export interface DurationObservation extends MigrationConditions {
  /** Observed migration duration, s. */
  d: number;
}

const predictOut = new Float64Array(4);
/** Per condition k: whether the model converges under it, and its duration (0 where not). */
function predictConditions(
  HPs: number,
  HPd: number,
  CPr: number,
  bws: Float64Array,
  mus: Float64Array,
  Ds: Float64Array,
  converges: Uint8Array,
  predicted: Float64Array,
): void {
  for (let k = 0; k < bws.length; k++) {
    const ok = predictInto(HPs, HPd, CPr, bws[k], mus[k], Ds[k], predictOut);
    converges[k] = ok ? 1 : 0;
    predicted[k] = ok ? predictOut[3] : 0;
  }
}

/**
 * Sum over observations, in their order, of the squared relative error of
 * their condition's prediction, 1e3 where it does not converge. A function
 * of its own (not in the cost closure made per fit) so V8 optimizes it once.
 */
function relativeSquares(converges: Uint8Array, predicted: Float64Array, of: Int32Array, observed: Float64Array): number {
  let s = 0;
  for (let i = 0; i < observed.length; i++) {
    const k = of[i];
    const d = observed[i];
    s += converges[k] ? ((predicted[k] - d) / d) ** 2 : 1e3;
  }
  return s;
}

/** The distinct conditions of the observations, and per observation the index of its own. */
function distinctConditions(obs: readonly MigrationConditions[]): { conditions: MigrationConditions[]; of: Int32Array } {
  const index = new Map<string, number>();
  const conditions: MigrationConditions[] = [];
  const of = new Int32Array(obs.length);
  obs.forEach((o, i) => {
    // Object.is keeps -0 and 0 apart, as predictDuration's arithmetic could
    const key = [o.bw, o.mu, o.D].map((v) => (Object.is(v, -0) ? '-0' : String(v))).join('|');
    let k = index.get(key);
    if (k === undefined) {
      k = conditions.length;
      index.set(key, k);
      conditions.push({ bw: o.bw, mu: o.mu, D: o.D });
    }
    of[i] = k;
  });
  return { conditions, of };
}

/**
 * Fits (HPs, HPd, CPr) to observed durations by minimising squared relative
 * error. Parameters are searched in log space (they are positive); a
 * prediction of non-convergence for a migration that did complete is
 * penalised heavily. Several starts guard against local minima.
 */
export function fitHotColdFromDurations(obs: readonly DurationObservation[]): HotColdFit | null {
  const usable = obs.filter((o) => o.d > 0 && o.bw > 0 && o.mu > 0);
  if (usable.length < 3 || new Set(usable.map((o) => o.bw)).size < 2) return null;
  // Repetitions share their conditions (bw, mu, D), so each distinct one is predicted once per evaluation
  // (a campaign of 20 repetitions: 20x fewer predictions); the sum still runs over the observations in
  // their order, so the cost, and the fit, are bit for bit those of one prediction per observation.
  const { conditions, of } = distinctConditions(usable);
  const bws = Float64Array.from(conditions, (c) => c.bw);
  const mus = Float64Array.from(conditions, (c) => c.mu);
  const Ds = Float64Array.from(conditions, (c) => c.D);
  const observed = Float64Array.from(usable, (o) => o.d);
  const converges = new Uint8Array(conditions.length);
  const predicted = new Float64Array(conditions.length);
  const cost = (x: number[]): number => {
    const HPs = Math.exp(x[0]),
      HPd = Math.exp(x[1]),
      CPr = Math.exp(x[2]);
    predictConditions(HPs, HPd, CPr, bws, mus, Ds, converges, predicted);
    return relativeSquares(converges, predicted, of, observed);
  };
  const minBw = Math.min(...usable.map((o) => o.bw));
  const mu = usable[0].mu;
  let best: { x: number[]; value: number } | null = null;
  for (const fs of [0.05, 0.2, 0.5])
    for (const hd of [0.2, 1, 5])
      for (const cf of [0.01, 0.1, 0.3]) {
        const x0 = [Math.log(fs * mu), Math.log(hd), Math.log(cf * minBw)];
        const r = nelderMead(cost, x0, { step: [1, 1, 1], maxIter: 3000, tol: 1e-12 });
        if (!best || r.value < best.value) best = r;
      }
  if (!best) return null;
  const p = { HPs: Math.exp(best.x[0]), HPd: Math.exp(best.x[1]), CPr: Math.exp(best.x[2]) };
  const meanD = usable.reduce((s, o) => s + o.d, 0) / usable.length;
  let sse = 0,
    sst = 0;
  for (const o of usable) {
    const r = predictDuration(p, o);
    sse += ((r.converges ? r.d : 0) - o.d) ** 2;
    sst += (o.d - meanD) ** 2;
  }
  return { ...p, HPr: p.HPs / p.HPd, n: usable.length, r2: sst > 0 ? 1 - sse / sst : 1, method: 'durations' };
}
