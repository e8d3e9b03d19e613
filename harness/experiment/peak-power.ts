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
 * poller reads), so the bins are kept in flat typed arrays in order of
 * their second: a reading of the last bin's second updates it, a later
 * second appends a bin, and no map or object is made per second (nor
 * anything the garbage collector has to trace). The first reading of an
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
  private binSec = new Float64Array(16);
  private binStart = new Int32Array(16);
  private entries = 0;
  private entryHost = new Int32Array(32);
  private entryT = new Float64Array(32);
  private entryW = new Float64Array(32);
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
        if (this.bins === this.binSec.length) {
          this.binSec = grown(this.binSec);
          this.binStart = grown(this.binStart);
        }
        this.binSec[this.bins] = sec;
        this.binStart[this.bins++] = this.entries;
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
    if (this.entries === this.entryT.length) {
      this.entryHost = grown(this.entryHost);
      this.entryT = grown(this.entryT);
      this.entryW = grown(this.entryW);
    }
    this.entryHost[this.entries] = h;
    this.entryT[this.entries] = tMs;
    this.entryW[this.entries++] = watts;
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
    this.binSec = this.entryT = this.entryW = new Float64Array(0);
    this.binStart = this.entryHost = new Int32Array(0);
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

/** A copy of a typed array with twice its room. */
function grown<T extends Float64Array | Int32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(16, a.length * 2));
  b.set(a);
  return b;
}

/** Peak power of a set of readings. */
export function peakPower(readings: Iterable<{ tMs: number; host: string; watts: number | null }>): PeakPower {
  const acc = new PeakAccumulator();
  for (const r of readings) if (r.watts !== null) acc.add(r.tMs, r.host, r.watts);
  return acc.result();
}
