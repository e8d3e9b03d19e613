/**
 * Utilisation power model of a testbed host (the watts the simulated BMC
 * reports; runs record them as modelled, not measured):
 *
 *   P = idle + cpuWPerCore * u + nicWPerMbit * r
 *
 * u = CPU time used by the host's QEMU processes per wall second, in cores
 *     (0..number of cores; 1 = one core fully busy), from /proc/<pid>/stat.
 * r = NIC throughput in Mbit/s, received + transmitted.
 *
 * Defaults from mVM's Table III (seed 001): idle 110 W; hosting a VM costs
 * 16% of idle (17.6 W), taken here per busy core (a hosted VM keeping one
 * vCPU busy); migration costs 0.512 J/MB, i.e. 0.512 * r/8 W = 0.064 W per
 * Mbit/s; booting costs 20 W above idle for the boot duration. Boot and
 * shutdown durations are Kherbache et al.'s ~115 s and ~30 s scaled by 1/10.
 */
export interface PowerModelParams {
  idleW: number;
  cpuWPerCore: number;
  nicWPerMbit: number;
  /** Extra power while booting (mVM: 20 W x boot duration). */
  bootExtraW: number;
  /** Power when off (0 W, or a small standby draw). */
  standbyW: number;
  bootMs: number;
  shutdownMs: number;
}

export const DEFAULT_POWER_MODEL: PowerModelParams = {
  idleW: 110,
  cpuWPerCore: 17.6,
  nicWPerMbit: 0.064,
  bootExtraW: 20,
  standbyW: 0,
  bootMs: 11_500,
  shutdownMs: 3_000,
};

export interface ModelInputs {
  /** QEMU CPU use in cores (CPU seconds per second). */
  cpuCores: number;
  /** NIC throughput, Mbit/s (rx + tx). */
  nicMbit: number;
}

/** Last chassis command seen by the BMC: on/off and when (epoch ms; 0 = since before the run). */
export interface ChassisState {
  power: 'on' | 'off';
  sinceMs: number;
}

export type PowerPhase = 'on' | 'booting' | 'shutting-down' | 'off';

/**
 * Watts for the current inputs and chassis state. "off" keeps idle power for
 * the shutdown duration (the OS is still shutting down), then standby; "on"
 * draws idle + boot extra for the boot duration, then the utilisation model.
 */
export function modelPower(
  p: PowerModelParams,
  inputs: ModelInputs,
  chassis: ChassisState,
  nowMs: number,
): { watts: number; phase: PowerPhase } {
  const since = nowMs - chassis.sinceMs;
  if (chassis.power === 'off') {
    return since < p.shutdownMs ? { watts: p.idleW, phase: 'shutting-down' } : { watts: p.standbyW, phase: 'off' };
  }
  if (chassis.sinceMs > 0 && since < p.bootMs) return { watts: p.idleW + p.bootExtraW, phase: 'booting' };
  const watts = p.idleW + p.cpuWPerCore * Math.max(0, inputs.cpuCores) + p.nicWPerMbit * Math.max(0, inputs.nicMbit);
  return { watts, phase: 'on' };
}

/** Parses the chassis hook's state file (`on 1795305806543`); anything unreadable means on since before the run. */
export function parseChassisState(text: string | null): ChassisState {
  const m = text ? /^(on|off)\s+(\d+)/.exec(text.trim()) : null;
  return m ? { power: m[1] as 'on' | 'off', sinceMs: Number(m[2]) } : { power: 'on', sinceMs: 0 };
}

/** utime + stime (clock ticks) from the text of /proc/<pid>/stat; the comm field may contain spaces and parentheses. */
export function cpuTicksFromStat(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}
