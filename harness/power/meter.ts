import type { Sample } from '../store/sample.ts';
import { excessEnergy, type EnergyResult, type PowerPoint } from './energy.ts';
import type { PollerReport } from './poller.ts';

/**
 * Power of a testbed's hosts as the runner and the treatments use it, whoever
 * supplies the watts: the local testbed's simulated BMCs (TestbedPower) or the
 * servers' BMCs of an inventory (BmcPower).
 */
export interface PowerMeter {
  readonly intervalMs: number;
  /** 'modelled' (simulated BMCs fed by a model) or 'measured' (the servers' own BMCs). */
  readonly source: 'modelled' | 'measured';
  /** Idle power per host the energies are taken above (W). */
  idleW(host: string): number;
  setTags(tags: Record<string, string>): void;
  pointsOf(host: string): readonly PowerPoint[];
  /** The readings of [fromMs, toMs] and the one either side of it. */
  pointsAround(host: string, fromMs: number, toMs: number): readonly PowerPoint[];
  /** Waits until every host has a reading (or a recorded gap) at or after `tMs`. */
  readingsAfter(tMs: number, hosts: string[], timeoutMs?: number): Promise<void>;
  /** Energy above idle of `host` over [fromMs, toMs] from the recorded readings. */
  energy(host: string, fromMs: number, toMs: number): EnergyResult;
  /** Chassis power on/off through the host's BMC; false when refused or not possible. */
  chassis(host: string, action: 'on' | 'off'): Promise<boolean>;
  stop(): Promise<PollerReport>;
}

/** The readings side both meters share: samples kept per host, tagged, integrated above idle. */
export abstract class PowerReadings {
  private points = new Map<string, PowerPoint[]>();
  private tags: Record<string, string> = {};
  abstract readonly intervalMs: number;
  abstract idleW(host: string): number;

  setTags(tags: Record<string, string>): void {
    this.tags = tags;
  }

  /** Keeps a poller sample (watts or a gap) and passes it on with the current tags. */
  protected record(s: Sample, sink: (s: Sample) => void): void {
    const list = this.points.get(s.tags.host) ?? [];
    insertByTime(list, { tMs: Date.parse(s.t), watts: typeof s.fields.watts === 'number' ? s.fields.watts : null });
    this.points.set(s.tags.host, list);
    sink({ ...s, tags: { ...this.tags, ...s.tags } });
  }

  /** Every reading of the host so far, in time order. */
  pointsOf(host: string): readonly PowerPoint[] {
    return this.points.get(host) ?? [];
  }

  /** The readings of [fromMs, toMs] and the one either side of it (what an integral over it reads). */
  pointsAround(host: string, fromMs: number, toMs: number): readonly PowerPoint[] {
    return around(this.pointsOf(host), fromMs, toMs);
  }

  async readingsAfter(tMs: number, hosts: string[], timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (hosts.every((h) => (this.pointsOf(h).at(-1)?.tMs ?? -Infinity) >= tMs)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  energy(host: string, fromMs: number, toMs: number): EnergyResult {
    return excessEnergy(this.pointsAround(host, fromMs, toMs), this.idleW(host), fromMs, toMs, { maxGapMs: 2.5 * this.intervalMs });
  }
}

/*
 * A campaign keeps every reading (1 Hz per host: ~180,000 per host over Salfner et al.'s 50 hours),
 * and each migration's energy used to copy and sort all of them, on the harness's CPU while the next
 * migration ran. Readings are kept in time order instead, and an integral reads its window only.
 */

/** Inserts p after every point at or before its time (appends in the usual case: readings come in order). */
export function insertByTime(list: PowerPoint[], p: PowerPoint): void {
  let i = list.length;
  while (i > 0 && list[i - 1].tMs > p.tMs) i--;
  if (i === list.length) list.push(p);
  else list.splice(i, 0, p);
}

/**
 * The slice of time-ordered `points` from the last point at or before `fromMs` to the first at or
 * after `toMs`: excessEnergy over it equals excessEnergy over all of them (a pair of consecutive
 * points outside it does not overlap [fromMs, toMs]), pair for pair in the same order.
 */
export function around(points: readonly PowerPoint[], fromMs: number, toMs: number): readonly PowerPoint[] {
  // first index with tMs > fromMs, then one back: the last point at or before fromMs
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid].tMs > fromMs) hi = mid;
    else lo = mid + 1;
  }
  const start = Math.max(0, lo - 1);
  // first index with tMs >= toMs (from start), included
  lo = start;
  hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid].tMs >= toMs) hi = mid;
    else lo = mid + 1;
  }
  return points.slice(start, Math.min(points.length, lo + 1));
}
