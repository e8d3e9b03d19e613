import type { PowerMeter } from '../power/meter.ts';
import type { Spec } from '../spec/schema.ts';
import type { Sample } from '../store/sample.ts';
import type { Mechanisms } from '../testbed/shaping.ts';
import type { TestbedDriver } from './types.ts';

/**
 * A campaign's hold on a testbed: per treatment, the driver for that
 * treatment's spec (a testbed is reused while the topology stays the same),
 * and at the end, everything the session set up removed.
 */
export interface DriverSession {
  /** The driver for this treatment; `beforeChange` runs before the testbed it replaces is taken down. */
  prepare(spec: Spec, beforeChange: () => Promise<void>): Promise<TestbedDriver>;
  /** Per link, how it is shaped (e.g. 'htb+delayfwd'), for the manifest. */
  mechanisms(): Record<string, Mechanisms>;
  /** Facts for the manifest (e.g. per-host accelerators, clock offsets under the ssh driver). */
  facts(): Record<string, unknown>;
  /** Why this session cannot measure power (e.g. an inventory without BMC addresses); null when it can. */
  powerUnavailable(): string | null;
  /** Starts polling the power of the driver's hosts (its BMCs) at the spec's interval. */
  startPower(driver: TestbedDriver, power: PowerSpec, o: PowerStart): Promise<PowerMeter>;
  /** Removes what the session set up (idempotent; also called from the Ctrl-C cleanup). */
  close(): Promise<void>;
}

export type PowerSpec = NonNullable<Spec['measure']['power']>;

export interface PowerStart {
  onSample: (s: Sample) => void;
  log: (l: string) => void;
  tags: Record<string, string>;
}
