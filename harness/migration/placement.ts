import type { VmSpecT, WorkloadSpec } from '../spec/schema.ts';
import { bootFailureHint } from '../hypervisor/boot-hint.ts';
import { guestIp, type HostNode } from '../testbed/topology.ts';
import type { VmProcess } from '../hypervisor/qemu.ts';
import type { GuestStartRecord } from '../store/schema/guest-start.ts';
import type { GuestStart, VmEnv } from '../driver/types.ts';
import { guestWorkloadLabel, guestWorkloadString } from '../workloads/guest-spec.ts';
import { prepareDisk } from './disk.ts';
import type { HeartbeatCheck } from './heartbeat-check.ts';

export type { VmEnv } from '../driver/types.ts';

/**
 * A VM placed on a host of the testbed: a QEMU process whose NIC is a tap on
 * that host's guest bridge, so the guest keeps its MAC and IP on whichever
 * host it runs and the client vantage point reaches it.
 */
export interface PlacedVm {
  spec: VmSpecT;
  index: number;
  mac: string;
  ip: string;
  host: HostNode;
  proc: VmProcess;
  memoryMiB: number;
  workload: string | undefined;
  /** How its guest came up for the treatment (restored or cold-booted) and how long until MB-READY. */
  start: GuestStartRecord;
  /** After a move: the check that its workload runs here (heartbeat-check.ts), still open or settled. */
  heartbeat?: HeartbeatCheck;
  /** After a move: resolves when that move's record has its final health (the heartbeat check settled). */
  settling?: Promise<void>;
}

export function vmMac(index: number): string {
  return `52:54:00:e7:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
}

export function tapName(index: number): string {
  return `mb-t${index}`;
}

/** The guest's `mb.workload=` string for a spec workload (undefined when idle). */
export function workloadString(w: WorkloadSpec): string | undefined {
  return guestWorkloadString(w);
}

/** One-line label of a workload, for records and reports. */
export function workloadLabel(w: WorkloadSpec): string {
  return guestWorkloadLabel(w);
}

function vmOptions(env: VmEnv, vm: VmSpecT, index: number) {
  return {
    name: vm.name,
    memoryMiB: Math.round(vm.memory.bytes / 2 ** 20),
    vcpus: vm.vcpus,
    image: env.image,
    accel: env.accel,
    ip: `${guestIp(index)}/${env.topo.prefixLen}`,
    workload: workloadString(vm.workload),
    httpd: vm.httpd,
    tap: { ifname: tapName(index), mac: vmMac(index) },
    runDir: env.dir,
  };
}

/** Boots a VM on its host and waits for the guest (and its workload) to say it is ready. */
export async function bootVm(env: VmEnv, vm: VmSpecT, index: number, host: HostNode): Promise<PlacedVm> {
  const o = vmOptions(env, vm, index);
  let proc: VmProcess | undefined;
  let readyMs: number;
  try {
    const disk = await prepareDisk(env, vm, host, 'boot');
    const t0 = Date.now();
    proc = await env.driver.startGuest(host, { ...o, fileStem: `${vm.name}.${host.name}`, boot: vm.boot, ...(disk ? { disk } : {}) });
    await proc.waitForSerial(/MB-READY/, env.bootTimeoutMs);
    readyMs = Date.now() - t0;
    if (o.workload) await proc.waitForSerial(/MB-WORKLOAD-RUNNING/, env.bootTimeoutMs);
  } catch (e) {
    await proc?.kill().catch(() => undefined);
    if (proc) await env.driver.releaseGuest(host, o.tap.ifname);
    const msg = (e as Error).message;
    const hint = bootFailureHint(o.memoryMiB, msg);
    throw new Error(`VM ${vm.name} on ${host.name} did not become ready: ${msg}${hint ? `\n${hint}` : ''}`);
  }
  const why = env.driver.backend === 'libvirt' ? 'the libvirt back end boots guests' : `the ${env.driver.kind} driver boots guests`;
  const how = proc.boot ?? { mode: 'cold' as const, from: null, reason: why, made_ms: null };
  const start = { ...how, ready_ms: readyMs };
  return { spec: vm, index, mac: o.tap.mac, ip: guestIp(index), host, proc, memoryMiB: o.memoryMiB, workload: o.workload, start };
}

/** Starts the paused destination QEMU of a migration (same devices, `-incoming defer`). */
export async function startIncoming(env: VmEnv, vm: PlacedVm, dst: HostNode, stem: string): Promise<VmProcess> {
  const disk = await prepareDisk(env, vm.spec, dst, 'incoming');
  const o: GuestStart = { ...vmOptions(env, vm.spec, vm.index), incoming: 'defer', fileStem: stem };
  if (disk) o.disk = disk;
  return env.driver.startGuest(dst, o);
}

/** Stops a guest's QEMU (if still running) and removes its NIC on the host it ran on. */
export async function releaseVm(env: VmEnv, host: HostNode, index: number, proc?: VmProcess): Promise<void> {
  if (proc && !proc.hasExited()) await proc.kill().catch(() => undefined);
  await env.driver.releaseGuest(host, tapName(index));
}
