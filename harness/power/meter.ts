import type { EnergyResult, PowerPoint } from './energy.ts';
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
