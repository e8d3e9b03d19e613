/**
 * mVM's pre-copy migration-duration model. Inputs in MiB, MiB/s, s:
 *   dmin = mu / bw
 *   CPs  = (dmin - HPd) * CPr            (cold pages dirtied while copying, >= 0)
 *   dCP  = (HPs + CPs) / (bw - CPr)
 *   dHP  = (HPs / bw) * (HPr / (bw - HPr))
 *   d    = dmin + dCP + dHP + D          (no convergence when bw <= HPr)
 */
export interface HotColdParams {
  /** Hot pages, MiB. */
  HPs: number;
  /** Time to rewrite the hot pages, s. */
  HPd: number;
  /** Cold-page dirtying rate after HPd, MiB/s. */
  CPr: number;
}

export function hotRate(p: HotColdParams): number {
  return p.HPd > 0 ? p.HPs / p.HPd : Infinity;
}

export interface MigrationConditions {
  /** Usable bandwidth, MiB/s. */
  bw: number;
  /** Guest memory in use, MiB. */
  mu: number;
  /** Maximum downtime, s. */
  D: number;
}

export type DurationPrediction =
  { converges: true; d: number; dmin: number; dCP: number; dHP: number } | { converges: false; reason: string };

export function predictDuration(p: HotColdParams, c: MigrationConditions): DurationPrediction {
  const HPr = hotRate(p);
  if (!(c.bw > 0)) return { converges: false, reason: 'no bandwidth' };
  if (c.bw <= HPr) return { converges: false, reason: `bw ${c.bw.toFixed(1)} MiB/s <= HPr ${HPr.toFixed(1)} MiB/s` };
  if (c.bw <= p.CPr) return { converges: false, reason: `bw ${c.bw.toFixed(1)} MiB/s <= CPr ${p.CPr.toFixed(1)} MiB/s` };
  const dmin = c.mu / c.bw;
  const CPs = Math.max(0, (dmin - p.HPd) * p.CPr);
  const dCP = (p.HPs + CPs) / (c.bw - p.CPr);
  const dHP = (p.HPs / c.bw) * (HPr / (c.bw - HPr));
  return { converges: true, d: dmin + dCP + dHP + c.D, dmin, dCP, dHP };
}

/** Nominal link rate (Mbit/s, decimal) to MiB/s, times a goodput efficiency. */
export function mbitToMiBps(mbit: number, efficiency = 1): number {
  return ((mbit * 1e6) / 8 / 1048576) * efficiency;
}
