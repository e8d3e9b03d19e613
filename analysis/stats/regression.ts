/** Ordinary least squares y = a x + b, with R^2 (simple-statistics). */
import { linearRegression, rSquared } from 'simple-statistics';

export interface LineFit {
  slope: number;
  intercept: number;
  r2: number;
}

export function fitLine(xs: readonly number[], ys: readonly number[]): LineFit {
  const pts = xs.map((x, i) => [x, ys[i]]);
  const { m, b } = linearRegression(pts);
  const r2 = rSquared(pts, (x) => m * x + b);
  return { slope: m, intercept: b, r2 };
}

/** Fast OLS over a subset of indices (bootstrap inner loop, no allocation). */
export function olsIndexed(xs: ArrayLike<number>, ys: ArrayLike<number>, idx: ArrayLike<number>): [number, number] {
  let sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  const n = idx.length;
  for (let k = 0; k < n; k++) {
    const x = xs[idx[k]],
      y = ys[idx[k]];
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const den = n * sxx - sx * sx;
  if (den === 0) return [NaN, NaN];
  const slope = (n * sxy - sx * sy) / den;
  return [slope, (sy - slope * sx) / n];
}
