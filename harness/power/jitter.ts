/** How far the poller's actual reading intervals stray from the target interval. */
export interface JitterStats {
  /** Number of intervals (consecutive request pairs) observed. */
  count: number;
  targetMs: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Largest |interval - target|. */
  maxAbsDevMs: number;
  /** Mean |interval - target|. */
  meanAbsDevMs: number;
}

/** Quantile by linear interpolation between order statistics (type 7, as R and numpy). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function jitterStats(intervalsMs: readonly number[], targetMs: number): JitterStats {
  const sorted = [...intervalsMs].sort((a, b) => a - b);
  const n = sorted.length;
  const sum = sorted.reduce((a, b) => a + b, 0);
  const devs = sorted.map((x) => Math.abs(x - targetMs));
  return {
    count: n,
    targetMs,
    meanMs: n ? sum / n : NaN,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxAbsDevMs: n ? Math.max(...devs) : NaN,
    meanAbsDevMs: n ? devs.reduce((a, b) => a + b, 0) / n : NaN,
  };
}
