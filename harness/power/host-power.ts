import { readFileSync } from 'node:fs';
import {
  cpuTicksFromStat,
  DEFAULT_POWER_MODEL,
  modelPower,
  parseChassisState,
  type PowerModelParams,
  type PowerPhase,
} from './power-model.ts';
import { writePowerFile } from './sim-bmc.ts';
import { nowMs } from './poller.ts';

/** Byte counters of a host's NIC (e.g. from /sys/class/net/<if>/statistics or `ip -s link` in its netns). */
export interface NicCounters {
  rxBytes: number;
  txBytes: number;
}

/** What the testbed supplies for one host. */
export interface HostPowerInputs {
  /** PIDs of the QEMU processes running on this host now. */
  qemuPids: () => readonly number[] | Promise<readonly number[]>;
  /** The host NIC's byte counters; omit for a model without network term. */
  nicCounters?: () => NicCounters | Promise<NicCounters>;
}

export interface HostPowerState {
  watts: number;
  phase: PowerPhase;
  cpuCores: number;
  nicMbit: number;
}

/** Kernel clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on Linux/x86 builds). */
const CLK_TCK = 100;

function readTicks(pid: number): number | null {
  try {
    return cpuTicksFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null; // exited
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Drives one simulated BMC's power sensor: every period, computes the host's
 * QEMU CPU use and NIC throughput over the last period, applies the power
 * model with the chassis state the BMC's power hook recorded, and writes the
 * watts to the file ipmi_sim polls. A PID seen for the first time counts from
 * the next period (no delta yet); a PID that exited stops counting.
 */
export class HostPowerModel {
  private timer: NodeJS.Timeout | null = null;
  private lastTicks = new Map<number, number>();
  private lastNic: NicCounters | null = null;
  private lastMs = 0;
  private state: HostPowerState;
  private busy = false;
  readonly params: PowerModelParams;

  constructor(
    private readonly bmc: { powerFile: string; chassisFile: string },
    private readonly inputs: HostPowerInputs,
    params: Partial<PowerModelParams> = {},
    private readonly periodMs = 1000,
  ) {
    this.params = { ...DEFAULT_POWER_MODEL, ...params };
    this.state = { watts: this.params.idleW, phase: 'on', cpuCores: 0, nicMbit: 0 };
  }

  /** Takes the first counter snapshot, writes the initial value, and updates every period. */
  async start(): Promise<void> {
    await this.update();
    this.timer = setInterval(() => void this.update(), this.periodMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Latest modelled state (what the BMC will report). */
  current(): HostPowerState {
    return { ...this.state };
  }

  /** One model step; public so tests and the integrator can force an update. */
  async update(): Promise<HostPowerState> {
    if (this.busy) return this.current();
    this.busy = true;
    try {
      const t = nowMs();
      const dtS = this.lastMs ? (t - this.lastMs) / 1000 : 0;
      const pids = await this.inputs.qemuPids();
      const ticks = new Map<number, number>();
      let dTicks = 0;
      for (const pid of pids) {
        const v = readTicks(pid);
        if (v === null) continue;
        ticks.set(pid, v);
        const prev = this.lastTicks.get(pid);
        if (prev !== undefined && v >= prev) dTicks += v - prev;
      }
      this.lastTicks = ticks;
      let nicMbit = 0;
      if (this.inputs.nicCounters) {
        const c = await this.inputs.nicCounters();
        if (this.lastNic && dtS > 0) {
          const bytes = Math.max(0, c.rxBytes - this.lastNic.rxBytes) + Math.max(0, c.txBytes - this.lastNic.txBytes);
          nicMbit = (bytes * 8) / 1e6 / dtS;
        }
        this.lastNic = c;
      }
      const cpuCores = dtS > 0 ? dTicks / CLK_TCK / dtS : 0;
      this.lastMs = t;
      const chassis = parseChassisState(readText(this.bmc.chassisFile));
      const { watts, phase } = modelPower(this.params, { cpuCores, nicMbit }, chassis, Date.now());
      writePowerFile(this.bmc.powerFile, watts);
      this.state = { watts, phase, cpuCores, nicMbit };
      return this.current();
    } finally {
      this.busy = false;
    }
  }
}
