/**
 * Student's t distribution: CDF through the regularized incomplete beta
 * function, quantile by bisection (simple-statistics has no t quantile).
 */
import { gammaln } from 'simple-statistics';

/** Continued fraction for the incomplete beta (Numerical Recipes betacf). */
function betacf(a: number, b: number, x: number): number {
  const MAXIT = 300;
  const EPS = 3e-14;
  const FPMIN = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAXIT; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const bt = Math.exp(gammaln(a + b) - gammaln(a) - gammaln(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x < (a + 1) / (a + b + 2)) return (bt * betacf(a, b, x)) / a;
  return 1 - (bt * betacf(b, a, 1 - x)) / b;
}

/** P(T <= t) for T ~ t(df). */
export function tCdf(t: number, df: number): number {
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** tQuantile by "p df": tables ask for the same few (0.975, n - 1) thousands of times, and each is a 50-step bisection. */
const quantiles = new Map<string, number>();

/** Quantile of t(df): the t with P(T <= t) = p. */
export function tQuantile(p: number, df: number): number {
  const key = `${p} ${df}`;
  let q = quantiles.get(key);
  if (q === undefined) {
    q = bisectTQuantile(p, df);
    if (quantiles.size >= 10_000) quantiles.clear();
    quantiles.set(key, q);
  }
  return q;
}

function bisectTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return NaN;
  if (p === 0.5) return 0;
  let lo = -1e3;
  let hi = 1e3;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
    if (hi - lo < 1e-12) break;
  }
  return (lo + hi) / 2;
}

/** Two-sided confidence interval of a mean with the t distribution. */
export function meanCi(xs: readonly number[], level = 0.95): { mean: number; low: number; high: number } {
  const n = xs.length;
  const m = n ? xs.reduce((s, x) => s + x, 0) / n : NaN;
  if (n < 2) return { mean: m, low: NaN, high: NaN };
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  const se = Math.sqrt(ss / (n - 1) / n);
  const q = tQuantile(1 - (1 - level) / 2, n - 1);
  return { mean: m, low: m - q * se, high: m + q * se };
}
