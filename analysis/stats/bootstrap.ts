/** Percentile bootstrap over case resampling, with a seeded RNG. */
import { seededRng } from '../../harness/util/rng.ts';
import { quantileSorted } from './descriptive.ts';

export interface BootstrapOptions {
  replicates?: number;
  seed?: number;
  level?: number;
}

/**
 * Resamples indices 0..n-1 with replacement, evaluates `stat` on each
 * resample, and returns percentile intervals for each component of the
 * statistic (e.g. [alpha, beta] of a regression).
 */
export function bootstrapCi(
  n: number,
  stat: (indices: Int32Array) => number[],
  opts: BootstrapOptions = {},
): { low: number; high: number }[] {
  const B = opts.replicates ?? 1000;
  const level = opts.level ?? 0.95;
  const rng = seededRng(opts.seed ?? 1);
  const draws: number[][] = [];
  const idx = new Int32Array(n);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    const s = stat(idx);
    if (s.every(Number.isFinite)) draws.push(s);
  }
  if (draws.length === 0) return [];
  const k = draws[0].length;
  const out: { low: number; high: number }[] = [];
  for (let j = 0; j < k; j++) {
    const col = draws.map((d) => d[j]).sort((a, b) => a - b);
    out.push({ low: quantileSorted(col, (1 - level) / 2), high: quantileSorted(col, 1 - (1 - level) / 2) });
  }
  return out;
}
