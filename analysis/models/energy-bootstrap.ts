/**
 * The energy model's bootstrap (1000 replicates over ~10,000 migrations in a
 * Salfner-scale campaign): the same as bootstrapCi(n, (idx) => olsIndexed(X, Y, idx))
 * (analysis/stats) with the draws made in a loop without calls (Rng.ints) and
 * no array per replicate. Same seeded draws in the same order and
 * the same sums in the same order, so the intervals are identical to the bit.
 */
import { seededRng } from '../../harness/util/rng.ts';
import { quantileSorted } from '../stats/descriptive.ts';

export function bootstrapOlsCi(
  X: Float64Array,
  Y: Float64Array,
  opts: { replicates?: number; seed?: number; level?: number } = {},
): { low: number; high: number }[] {
  const B = opts.replicates ?? 1000;
  const level = opts.level ?? 0.95;
  const rng = seededRng(opts.seed ?? 1);
  const n = X.length;
  const slopes: number[] = [],
    intercepts: number[] = [];
  const idx = new Int32Array(n);
  const sums = new Float64Array(4);
  for (let b = 0; b < B; b++) {
    rng.ints(idx, n);
    resampleSums(X, Y, idx, sums);
    const sx = sums[0],
      sy = sums[1],
      sxx = sums[2],
      sxy = sums[3];
    const den = n * sxx - sx * sx;
    // a degenerate resample (one distinct x) has no line: left out, as bootstrapCi leaves out non-finite statistics
    if (den === 0) continue;
    const slope = (n * sxy - sx * sy) / den;
    const intercept = (sy - slope * sx) / n;
    if (!Number.isFinite(slope) || !Number.isFinite(intercept)) continue;
    slopes.push(slope);
    intercepts.push(intercept);
  }
  if (slopes.length === 0) return [];
  return [slopes, intercepts].map((col) => {
    col.sort((a, b) => a - b);
    return { low: quantileSorted(col, (1 - level) / 2), high: quantileSorted(col, 1 - (1 - level) / 2) };
  });
}

/**
 * Σx, Σy, Σx², Σxy over the resample, summed in the order olsIndexed sums.
 * A function of its own: called once per replicate it is optimized after a
 * few calls, where the same loop nested in the replicate loop ran ~5x slower
 * for most of a bootstrap (measured on node 20).
 */
function resampleSums(X: Float64Array, Y: Float64Array, idx: Int32Array, out: Float64Array): void {
  let sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  for (let k = 0; k < idx.length; k++) {
    const j = idx[k];
    const x = X[j],
      y = Y[j];
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  out[0] = sx;
  out[1] = sy;
  out[2] = sxx;
  out[3] = sxy;
}
