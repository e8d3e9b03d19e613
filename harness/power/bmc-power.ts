/**
 * Power of inventory servers from their own BMCs (ssh driver): ipmitool
 * lanplus from the controller to each host's BMC address, DCMI `power
 * reading` (or a named sensor), at the spec's interval. Nothing is modelled:
 * the idle power the energies are taken above is the spec's `idle_w`, else
 * the median of each host's first readings, taken before any guest runs.
 */
import type { Sample } from '../store/sample.ts';
import { UserError } from '../util/errors.ts';
import { chassisPower } from './chassis.ts';
import type { PowerPoint } from './energy.ts';
import { PowerReadings, type PowerMeter } from './meter.ts';
import { PowerPoller, type PollerReport, type PowerSource } from './poller.ts';

export type BmcHost = PowerSource;

/** Median of the first `n` non-null readings of a host, or null while there are fewer. */
export function baselineOf(points: readonly PowerPoint[], n: number): number | null {
  const w = points
    .map((p) => p.watts)
    .filter((x): x is number => x !== null)
    .slice(0, n)
    .sort((a, b) => a - b);
  if (w.length < n) return null;
  return n % 2 ? w[(n - 1) / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
}

export class BmcPower extends PowerReadings implements PowerMeter {
  readonly source = 'measured' as const;
  private idle = new Map<string, number>();
  private poller: PowerPoller;

  private constructor(
    private readonly hosts: readonly BmcHost[],
    readonly intervalMs: number,
    private readonly o: { onSample: (s: Sample) => void; log: (l: string) => void },
  ) {
    super();
    this.poller = new PowerPoller(hosts, { intervalMs, onSample: (s) => this.record(s, o.onSample), log: o.log });
  }

  /**
   * Starts polling; without `idleW`, waits for `baselineReadings` readings per host (the idle
   * baseline). A host whose BMC gives none within the wait is a UserError naming it.
   */
  static async start(
    hosts: readonly BmcHost[],
    o: { intervalMs: number; idleW?: number; baselineReadings?: number; onSample: (s: Sample) => void; log: (l: string) => void },
  ): Promise<BmcPower> {
    const it = new BmcPower(hosts, o.intervalMs, o);
    await it.poller.start();
    try {
      if (o.idleW !== undefined) for (const h of hosts) it.idle.set(h.host, o.idleW);
      else await it.measureBaseline(o.baselineReadings ?? 3);
    } catch (e) {
      await it.poller.stop().catch(() => undefined);
      throw e;
    }
    return it;
  }

  private async measureBaseline(n: number): Promise<void> {
    const waitMs = (n + 10) * this.intervalMs + 10_000;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const missing = this.hosts.filter((h) => baselineOf(this.pointsOf(h.host), n) === null);
      if (missing.length === 0) break;
      if (Date.now() > deadline) {
        const ask = missing[0].reading.kind === 'dcmi' ? 'dcmi power reading' : 'sensor reading';
        throw new UserError(
          `power: fewer than ${n} readings from the BMC of ${missing.map((h) => `${h.host} (${h.address})`).join(', ')} within ` +
            `${Math.round(waitMs / 1000)} s; check the BMC address, its login (MIGBENCH_BMC_USER/_PASSWORD or the secrets file) ` +
            `and that it answers 'ipmitool -I lanplus ... ${ask}', or give measure.power.idle_w`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const h of this.hosts) this.idle.set(h.host, baselineOf(this.pointsOf(h.host), n)!);
    this.o.log(`power: idle baseline ${this.hosts.map((h) => `${h.host} ${this.idle.get(h.host)!.toFixed(0)} W`).join(', ')}`);
  }

  idleW(host: string): number {
    return this.idle.get(host) ?? 0;
  }

  /** Per host, the idle baseline (W), for the manifest. */
  baselines(): Record<string, number> {
    return Object.fromEntries(this.idle);
  }

  async chassis(host: string, action: 'on' | 'off'): Promise<boolean> {
    const h = this.hosts.find((x) => x.host === host);
    return h ? chassisPower(h, action) : false;
  }

  stop(): Promise<PollerReport> {
    return this.poller.stop();
  }
}
