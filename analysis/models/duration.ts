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

const parts = new Float64Array(4);
export function predictDuration(p: HotColdParams, c: MigrationConditions): DurationPrediction {
  const out = parts;
  if (predictInto(p.HPs, p.HPd, p.CPr, c.bw, c.mu, c.D, out)) return { converges: true, d: out[3], dmin: out[0], dCP: out[1], dHP: out[2] };
  const HPr = hotRate(p);
  if (!(c.bw > 0)) return { converges: false, reason: 'no bandwidth' };
  if (c.bw <= HPr) return { converges: false, reason: `bw ${c.bw.toFixed(1)} MiB/s <= HPr ${HPr.toFixed(1)} MiB/s` };
  return { converges: false, reason: `bw ${c.bw.toFixed(1)} MiB/s <= CPr ${p.CPr.toFixed(1)} MiB/s` };
}

/**
 * The model on plain numbers, without objects or texts, for fits that
 * evaluate it millions of times: false when it does not converge
 * (predictDuration says why), else true with dmin, dCP, dHP and d in
 * out[0..3]. predictDuration is this.
 */
export function predictInto(HPs: number, HPd: number, CPr: number, bw: number, mu: number, D: number, out: Float64Array): boolean {
  const HPr = HPd > 0 ? HPs / HPd : Infinity; // hotRate
  if (!(bw > 0) || bw <= HPr || bw <= CPr) return false;
  const dmin = mu / bw;
  const CPs = Math.max(0, (dmin - HPd) * CPr);
  const dCP = (HPs + CPs) / (bw - CPr);
  const dHP = (HPs / bw) * (HPr / (bw - HPr));
  out[0] = dmin;
  out[1] = dCP;
  out[2] = dHP;
  out[3] = dmin + dCP + dHP + D;
  return true;
}

/** Nominal link rate (Mbit/s, decimal) to MiB/s, times a goodput efficiency. */
export function mbitToMiBps(mbit: number, efficiency = 1): number {
  return ((mbit * 1e6) / 8 / 1048576) * efficiency;
}
