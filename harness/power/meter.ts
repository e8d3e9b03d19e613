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
    list.push({ tMs: Date.parse(s.t), watts: typeof s.fields.watts === 'number' ? s.fields.watts : null });
    this.points.set(s.tags.host, list);
    sink({ ...s, tags: { ...this.tags, ...s.tags } });
  }

  pointsOf(host: string): readonly PowerPoint[] {
    return this.points.get(host) ?? [];
  }

  async readingsAfter(tMs: number, hosts: string[], timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (hosts.every((h) => this.pointsOf(h).some((p) => p.tMs >= tMs))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  energy(host: string, fromMs: number, toMs: number): EnergyResult {
    return excessEnergy(this.pointsOf(host), this.idleW(host), fromMs, toMs, { maxGapMs: 2.5 * this.intervalMs });
  }
}
