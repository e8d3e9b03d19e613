/**
 * Mann-Whitney U test (Wilcoxon rank-sum). Exact null distribution for small
 * samples without ties; otherwise the normal approximation with tie
 * correction and continuity correction.
 */
import { normalCdf } from './normal.ts';

export type Alternative = 'greater' | 'less' | 'two-sided';

export interface MannWhitneyResult {
  /** U of the first sample: #pairs x > y plus half the ties. */
  u: number;
  p: number;
  method: 'exact' | 'normal';
}

/** Largest n1 * n2 for which the exact distribution is enumerated. */
const EXACT_LIMIT = 2500;

/** Average ranks (1-based) of the concatenation of xs and ys. */
function rankSum(xs: readonly number[], ys: readonly number[]): { r1: number; tieTerm: number; ties: boolean } {
  const all = [...xs.map((v) => ({ v, g: 0 })), ...ys.map((v) => ({ v, g: 1 }))].sort((a, b) => a.v - b.v);
  let r1 = 0;
  let tieTerm = 0;
  let ties = false;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    const t = j - i + 1;
    if (t > 1) {
      ties = true;
      tieTerm += t * t * t - t;
    }
    const rank = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) if (all[k].g === 0) r1 += rank;
    i = j + 1;
  }
  return { r1, tieTerm, ties };
}

/** Counts of arrangements with each U for sample sizes m, n (U in 0..m*n). */
function exactCounts(m: number, n: number): Float64Array {
  // f[i][j] over u, built by the recurrence f(i,j,u) = f(i-1,j,u-j) + f(i,j-1,u).
  let prev: Float64Array[] = [];
  for (let i = 0; i <= m; i++) {
    const row: Float64Array[] = [];
    for (let j = 0; j <= n; j++) {
      const arr = new Float64Array(i * j + 1);
      if (i === 0 || j === 0) arr[0] = 1;
      else {
        const a = prev[j]; // (i-1, j)
        const b = row[j - 1]; // (i, j-1)
        for (let u = 0; u < arr.length; u++) {
          arr[u] = (u - j >= 0 && u - j < a.length ? a[u - j] : 0) + (u < b.length ? b[u] : 0);
        }
      }
      row.push(arr);
    }
    prev = row;
  }
  return prev[n];
}

export function mannWhitney(xs: readonly number[], ys: readonly number[], alternative: Alternative = 'two-sided'): MannWhitneyResult {
  const n1 = xs.length,
    n2 = ys.length;
  if (n1 === 0 || n2 === 0) return { u: NaN, p: NaN, method: 'normal' };
  const { r1, tieTerm, ties } = rankSum(xs, ys);
  const u = r1 - (n1 * (n1 + 1)) / 2;
  if (!ties && n1 * n2 <= EXACT_LIMIT) {
    const counts = exactCounts(n1, n2);
    let total = 0;
    for (const c of counts) total += c;
    const uObs = Math.round(u);
    let ge = 0,
      le = 0;
    for (let k = 0; k < counts.length; k++) {
      if (k >= uObs) ge += counts[k];
      if (k <= uObs) le += counts[k];
    }
    const pg = ge / total,
      pl = le / total;
    const p = alternative === 'greater' ? pg : alternative === 'less' ? pl : Math.min(1, 2 * Math.min(pg, pl));
    return { u, p, method: 'exact' };
  }
  const N = n1 + n2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (N + 1 - tieTerm / (N * (N - 1))));
  if (sigma === 0) return { u, p: 1, method: 'normal' };
  const zg = (u - mu - 0.5) / sigma; // continuity correction toward the null
  const zl = (u - mu + 0.5) / sigma;
  const pg = 1 - normalCdf(zg);
  const pl = normalCdf(zl);
  const p = alternative === 'greater' ? pg : alternative === 'less' ? pl : Math.min(1, 2 * Math.min(pg, pl));
  return { u, p, method: 'normal' };
}

/**
 * The smallest one-sided p-value the test can return for sample sizes n1, n2:
 * the p of complete separation (every x above every y). With 3 vs 3 it is
 * 1/20 = 0.05, so no result can be significant at alpha 0.05; callers use it
 * to tell "no difference" from "too few repetitions to tell".
 */
export function minOneSidedP(n1: number, n2: number): number {
  if (n1 <= 0 || n2 <= 0) return 1;
  if (n1 * n2 <= EXACT_LIMIT) {
    // 1 / C(n1+n2, n1): exactly one arrangement has the largest U (ties only make p larger).
    let c = 1;
    for (let k = 1; k <= Math.min(n1, n2); k++) c = (c * (n1 + n2 - Math.min(n1, n2) + k)) / k;
    return 1 / c;
  }
  const xs = Array.from({ length: n1 }, (_, i) => n2 + i);
  const ys = Array.from({ length: n2 }, (_, i) => i);
  return mannWhitney(xs, ys, 'greater').p;
}
