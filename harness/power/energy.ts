import type { Sample } from '../store/sample.ts';

/** One power reading; watts null marks a recorded gap (missed/late reading). */
export interface PowerPoint {
  tMs: number;
  watts: number | null;
}

export interface EnergyResult {
  /** Integral of (P - idle) over the covered parts of the interval, in joules. */
  joules: number;
  /** Length of the requested interval, ms. */
  intervalMs: number;
  /** Part of the interval lying between two valid readings close enough to integrate. */
  coveredMs: number;
  /** coveredMs / intervalMs (0..1); below 1 the energy is a lower bound on coverage, not extrapolated. */
  coveredFraction: number;
}

export interface EnergyOptions {
  /** Two valid readings further apart than this are not bridged (default 2500 ms: 2.5 x the 1 Hz period). */
  maxGapMs?: number;
}

/**
 * Trapezoid integral of (P - idleW) between fromMs and toMs. A segment is
 * integrated only when both ends are real readings and they are at most
 * maxGapMs apart; a null reading (gap) breaks the series, so nothing is
 * invented across it. Segments straddling the interval bounds are clipped
 * with linear interpolation. Coverage says how much of the interval counted.
 */
export function excessEnergy(
  points: readonly PowerPoint[],
  idleW: number,
  fromMs: number,
  toMs: number,
  opts: EnergyOptions = {},
): EnergyResult {
  const maxGap = opts.maxGapMs ?? 2500;
  const pts = [...points].sort((a, b) => a.tMs - b.tMs);
  let joules = 0;
  let covered = 0;
  for (let i = 0; i + 1 < pts.length; i++) {
    const a = pts[i];
    const b = pts[i + 1];
    if (a.watts === null || b.watts === null) continue;
    const dt = b.tMs - a.tMs;
    if (dt <= 0 || dt > maxGap) continue;
    const lo = Math.max(a.tMs, fromMs);
    const hi = Math.min(b.tMs, toMs);
    if (hi <= lo) continue;
    const at = (t: number) => a.watts! + ((b.watts! - a.watts!) * (t - a.tMs)) / dt;
    joules += (((at(lo) + at(hi)) / 2 - idleW) * (hi - lo)) / 1000;
    covered += hi - lo;
  }
  const intervalMs = Math.max(0, toMs - fromMs);
  return { joules, intervalMs, coveredMs: covered, coveredFraction: intervalMs > 0 ? covered / intervalMs : 0 };
}

/** Power readings of one host from samples (measurement 'power', tag host). */
export function powerPoints(samples: readonly Sample[], host: string): PowerPoint[] {
  return samples
    .filter((s) => s.measurement === 'power' && s.tags.host === host)
    .map((s) => ({ tMs: Date.parse(s.t), watts: typeof s.fields.watts === 'number' ? s.fields.watts : null }));
}
