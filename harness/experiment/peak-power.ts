/**
 * Peak power, one definition for the harness's per-treatment totals
 * (treatments.jsonl) and for analysis: per host the highest reading; for the
 * testbed, the highest sum over hosts of each host's latest reading within
 * a one-second bin (hosts are polled at different instants, so readings are
 * aligned to the second before summing). Incremental, so analysis can feed
 * it while streaming millions of samples.
 */
export interface PeakPower {
  /** Highest summed power over the hosts (W), null without readings. */
  total: number | null;
  /** Highest reading per host (W). */
  perHost: Record<string, number>;
}

export class PeakAccumulator {
  private bins = new Map<number, Map<string, { t: number; w: number }>>();
  private hostMax = new Map<string, number>();

  add(tMs: number, host: string, watts: number): void {
    if (!Number.isFinite(watts) || !Number.isFinite(tMs)) return;
    if (watts > (this.hostMax.get(host) ?? -Infinity)) this.hostMax.set(host, watts);
    const sec = Math.floor(tMs / 1000);
    let bin = this.bins.get(sec);
    if (!bin) this.bins.set(sec, (bin = new Map()));
    const cur = bin.get(host);
    if (!cur) bin.set(host, { t: tMs, w: watts });
    else if (tMs >= cur.t) {
      // updated in place: one object per host and second, not per reading
      cur.t = tMs;
      cur.w = watts;
    }
  }

  result(): PeakPower {
    let total: number | null = null;
    for (const bin of this.bins.values()) {
      let sum = 0;
      for (const r of bin.values()) sum += r.w;
      if (total === null || sum > total) total = sum;
    }
    return { total, perHost: Object.fromEntries(this.hostMax) };
  }
}

/** Peak power of a set of readings. */
export function peakPower(readings: Iterable<{ tMs: number; host: string; watts: number | null }>): PeakPower {
  const acc = new PeakAccumulator();
  for (const r of readings) if (r.watts !== null) acc.add(r.tMs, r.host, r.watts);
  return acc.result();
}
