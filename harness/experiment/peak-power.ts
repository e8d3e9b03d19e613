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

/** A second's bin in the general form: each host's latest reading, hosts in the order they first appeared. */
type Bin = Map<string, { t: number; w: number }>;

/**
 * Readings usually arrive in time order (a sample file is written as the
 * poller reads), so the bins are kept in flat number arrays in order of
 * their second: a reading of the last bin's second updates it, a later
 * second appends a bin, and no map or object is made per second (nor
 * anything the garbage collector has to trace: V8 keeps such arrays as
 * unboxed doubles and small integers). Plain arrays, not typed arrays: a
 * campaign has one accumulator per treatment, and growing typed arrays
 * (a new buffer and a copy each time) took ~160 ms for 528 treatments of
 * ~1,900 readings against ~75 ms with push (first pass, node 20). The first reading of an
 * earlier second than the last bin's turns the arrays into a map of bins
 * once and goes on with that; both forms give the same result (same bins,
 * hosts in the same order, so the same sums).
 */
export class PeakAccumulator {
  /** Hosts in the order of their first reading, with their highest reading. */
  private hosts: string[] = [];
  private hostMax: number[] = [];
  /** Ordered form: per bin its second and its first entry; per entry host (index), time and watts. */
  private bins = 0;
  private binSec: number[] = [];
  private binStart: number[] = [];
  private entries = 0;
  private entryHost: number[] = [];
  private entryT: number[] = [];
  private entryW: number[] = [];
  /** General form, set once a reading came out of order (the arrays are then unused). */
  private map: Map<number, Bin> | null = null;

  add(tMs: number, host: string, watts: number): void {
    if (!Number.isFinite(watts) || !Number.isFinite(tMs)) return;
    let h = this.hosts.indexOf(host);
    if (h < 0) {
      h = this.hosts.length;
      this.hosts.push(host);
      this.hostMax.push(watts);
    } else if (watts > this.hostMax[h]) this.hostMax[h] = watts;
    const sec = Math.floor(tMs / 1000);
    if (this.map === null) {
      const last = this.bins - 1;
      if (last < 0 || sec > this.binSec[last]) {
        this.binSec.push(sec);
        this.binStart.push(this.entries);
        this.bins++;
        this.push(h, tMs, watts);
        return;
      }
      if (sec === this.binSec[last]) {
        for (let i = this.binStart[last]; i < this.entries; i++) {
          if (this.entryHost[i] !== h) continue;
          if (tMs >= this.entryT[i]) {
            this.entryT[i] = tMs;
            this.entryW[i] = watts;
          }
          return;
        }
        this.push(h, tMs, watts);
        return;
      }
      this.map = this.toMap();
    }
    let bin = this.map.get(sec);
    if (!bin) this.map.set(sec, (bin = new Map()));
    const cur = bin.get(host);
    if (!cur) bin.set(host, { t: tMs, w: watts });
    else if (tMs >= cur.t) {
      // updated in place: one object per host and second, not per reading
      cur.t = tMs;
      cur.w = watts;
    }
  }

  private push(h: number, tMs: number, watts: number): void {
    this.entryHost.push(h);
    this.entryT.push(tMs);
    this.entryW.push(watts);
    this.entries++;
  }

  /** The ordered form as a map of bins (in the order of their seconds, hosts in their order); the arrays are released. */
  private toMap(): Map<number, Bin> {
    const bins = new Map<number, Bin>();
    for (let b = 0; b < this.bins; b++) {
      const bin: Bin = new Map();
      const end = b + 1 < this.bins ? this.binStart[b + 1] : this.entries;
      for (let i = this.binStart[b]; i < end; i++) bin.set(this.hosts[this.entryHost[i]], { t: this.entryT[i], w: this.entryW[i] });
      bins.set(this.binSec[b], bin);
    }
    this.bins = this.entries = 0;
    this.binSec = [];
    this.binStart = [];
    this.entryHost = [];
    this.entryT = [];
    this.entryW = [];
    return bins;
  }

  result(): PeakPower {
    let total: number | null = null;
    if (this.map === null)
      for (let b = 0; b < this.bins; b++) {
        const end = b + 1 < this.bins ? this.binStart[b + 1] : this.entries;
        let sum = 0;
        for (let i = this.binStart[b]; i < end; i++) sum += this.entryW[i];
        if (total === null || sum > total) total = sum;
      }
    else
      for (const bin of this.map.values()) {
        let sum = 0;
        for (const r of bin.values()) sum += r.w;
        if (total === null || sum > total) total = sum;
      }
    return { total, perHost: Object.fromEntries(this.hosts.map((h, i) => [h, this.hostMax[i]])) };
  }
}

/** Peak power of a set of readings. */
export function peakPower(readings: Iterable<{ tMs: number; host: string; watts: number | null }>): PeakPower {
  const acc = new PeakAccumulator();
  for (const r of readings) if (r.watts !== null) acc.add(r.tMs, r.host, r.watts);
  return acc.result();
}
