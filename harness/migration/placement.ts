import { run } from '../util/exec.ts';
import type { VmSpecT, WorkloadSpec } from '../spec/schema.ts';
import { guestIp, type HostNode, type Topology } from '../testbed/topology.ts';
import { startVm, type VmProcess } from '../hypervisor/qemu.ts';
import type { Accel } from '../hypervisor/version.ts';
import type { GuestImage } from '../image/build.ts';
import { guestWorkloadLabel, guestWorkloadString } from '../workloads/guest-spec.ts';

/**
 * A VM placed on the local testbed: a QEMU process in a host namespace whose
 * NIC is a tap on that host's bridge, so the guest keeps its MAC and IP on
 * whichever host it runs and the client namespace reaches it.
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

export async function createTap(ns: string, ifname: string): Promise<void> {
  await run('ip', ['-n', ns, 'tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
  await run('ip', ['-n', ns, 'link', 'set', ifname, 'master', 'mb-br']);
  await run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
}

export async function deleteTap(ns: string, ifname: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'del', ifname], { allowFail: true });
}

export interface VmEnv {
  topo: Topology;
  image: GuestImage;
  accel: Accel;
  /** Where QMP sockets and serial logs go (per treatment). */
  dir: string;
  bootTimeoutMs: number;
}

function vmOptions(env: VmEnv, vm: VmSpecT, index: number, host: HostNode) {
  return {
    name: vm.name,
    netns: host.ns,
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
  const o = vmOptions(env, vm, index, host);
  await createTap(host.ns, o.tap.ifname);
  let proc: VmProcess | undefined;
  try {
    proc = await startVm({ ...o, fileStem: `${vm.name}.${host.name}` });
    await proc.waitForSerial(/MB-READY/, env.bootTimeoutMs);
    if (o.workload) await proc.waitForSerial(/MB-WORKLOAD-RUNNING/, env.bootTimeoutMs);
  } catch (e) {
    await proc?.kill().catch(() => undefined);
    await deleteTap(host.ns, o.tap.ifname);
    throw new Error(`VM ${vm.name} on ${host.name} did not become ready: ${(e as Error).message}`);
  }
  return { spec: vm, index, mac: o.tap.mac, ip: guestIp(index), host, proc, memoryMiB: o.memoryMiB, workload: o.workload };
}

/** Starts the paused destination QEMU of a migration (same devices, `-incoming defer`). */
export async function startIncoming(env: VmEnv, vm: PlacedVm, dst: HostNode, stem: string): Promise<VmProcess> {
  const o = vmOptions(env, vm.spec, vm.index, dst);
  await createTap(dst.ns, o.tap.ifname);
  try {
    return await startVm({ ...o, incoming: 'defer', fileStem: stem });
  } catch (e) {
    await deleteTap(dst.ns, o.tap.ifname);
    throw e;
  }
}
