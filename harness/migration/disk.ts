import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DISK_NODE, type VmProcess } from '../hypervisor/qemu.ts';
import type { QmpClient } from '../hypervisor/qmp.ts';
import type { DiskSpecT, VmSpecT } from '../spec/schema.ts';
import type { HostNode } from '../testbed/topology.ts';
import { run } from '../util/exec.ts';
import type { VmEnv } from '../driver/types.ts';
import type { BlockJobInfo, DiskCheck } from './features.ts';

/**
 * Guest disks and block migration (control half): the image of each host side, the NBD export on
 * the destination + blockdev-mirror on the source (QEMU >= 9.1 dropped `migrate -b`), and the
 * in-guest content check (workloads/guest/www/cgi-bin/disk). What it observes is derived in features.ts.
 */

export const MIRROR_JOB = 'mb-mirror';
/** The source's NBD client node: the mirror's target. */
const NBD_TARGET = 'mb-mirror-dst';
/** NBD port of a VM's export on the destination (one server per incoming QEMU). */
export const nbdPort = (vmIndex: number) => 10809 + vmIndex;

/** Where a VM's disk image lives on `host` (local driver: in the treatment dir; shared storage: one file). */
export function diskPath(env: Pick<VmEnv, 'dir'>, vm: Pick<VmSpecT, 'name'>, disk: DiskSpecT, host: Pick<HostNode, 'name'>): string {
  return disk.storage === 'shared'
    ? join(env.dir, `${vm.name}.disk.${disk.format}`)
    : join(env.dir, `${vm.name}.${host.name}.disk.${disk.format}`);
}

/**
 * The image a QEMU of `vm` on `host` opens: created empty (sparse) at boot, and for a destination of
 * a local disk (the mirror fills it); a shared image is opened as it is by the destination.
 */
export async function prepareDisk(
  env: Pick<VmEnv, 'dir'>,
  vm: Pick<VmSpecT, 'name' | 'disk'>,
  host: Pick<HostNode, 'name'>,
  purpose: 'boot' | 'incoming',
): Promise<{ path: string; format: 'raw' | 'qcow2' } | undefined> {
  const disk = vm.disk;
  if (!disk) return undefined;
  const path = diskPath(env, vm, disk, host);
  if (purpose === 'boot' || disk.storage === 'local' || !existsSync(path)) {
    rmSync(path, { force: true });
    await run('qemu-img', ['create', '-q', '-f', disk.format, path, String(disk.size.bytes)]);
  }
  return { path, format: disk.format };
}

/** Bytes an image occupies on its host (qemu-img actual-size; -U: the image is open in QEMU). */
export async function allocatedBytes(path: string): Promise<number> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', path]);
  return (JSON.parse(r.stdout) as { 'actual-size': number })['actual-size'];
}

/** Removes a local disk image a VM left behind on a host (after it moved away). */
export function removeDisk(env: Pick<VmEnv, 'dir'>, vm: Pick<VmSpecT, 'name' | 'disk'>, host: Pick<HostNode, 'name'>): void {
  if (vm.disk?.storage === 'local') rmSync(diskPath(env, vm, vm.disk, host), { force: true });
}

const DISK_LINE = (op: string) => new RegExp(`MB-DISK op=${op} (?:bytes=(\\d+) sha256=([0-9a-f]{64})|error=(\\S+))`);

/** Runs the guest's disk script on its serial console: `write` a fresh random pattern or `check` it; returns its checksum. */
export async function guestDiskOp(proc: VmProcess, op: 'write' | 'check', timeoutMs = 60_000): Promise<{ bytes: number; sha256: string }> {
  const mark = proc.serialMark();
  proc.writeSerial(`/www/cgi-bin/disk ${op}\n`);
  const line = await proc.waitForSerial(DISK_LINE(op), timeoutMs, { since: mark });
  const m = DISK_LINE(op).exec(line)!;
  if (m[3]) throw new Error(`guest disk ${op} failed: ${m[3]}`);
  return { bytes: Number(m[1]), sha256: m[2] };
}

/** Compares the checksums written before and read after a move. */
export function diskCheck(before: { bytes: number; sha256: string } | null, after: { bytes: number; sha256: string } | null): DiskCheck {
  return {
    bytes: before?.bytes ?? null,
    sha256_before: before?.sha256 ?? null,
    sha256_after: after?.sha256 ?? null,
    verified: before && after ? before.sha256 === after.sha256 : null,
  };
}

/** Destination: an NBD server exporting its (empty) disk, writable; the export activates the incoming node. */
export async function exportDisk(dst: QmpClient, host: string, port: number): Promise<void> {
  await dst.execute('nbd-server-start', { addr: { type: 'inet', data: { host, port: String(port) } } });
  await dst.execute('block-export-add', { type: 'nbd', id: DISK_NODE, 'node-name': DISK_NODE, name: DISK_NODE, writable: true });
}

/**
 * Source: an NBD client node on the destination's export and a full mirror to it. write-blocking:
 * once READY every guest write reaches the destination before it completes, so the copy is exact
 * whenever the guest stops (QEMU's documented flow cancels the READY job after the RAM migration).
 */
export async function startMirror(src: QmpClient, host: string, port: number): Promise<void> {
  await src.execute('blockdev-add', {
    driver: 'nbd',
    'node-name': NBD_TARGET,
    server: { type: 'inet', host, port: String(port) },
    export: DISK_NODE,
  });
  await src.execute('blockdev-mirror', {
    'job-id': MIRROR_JOB,
    device: DISK_NODE,
    target: NBD_TARGET,
    sync: 'full',
    'copy-mode': 'write-blocking',
  });
}

/** The mirror job as query-block-jobs shows it, or null when it is gone. */
export async function queryMirror(src: QmpClient): Promise<BlockJobInfo | null> {
  const jobs = await src.execute<BlockJobInfo[]>('query-block-jobs');
  return jobs.find((j) => j.device === MIRROR_JOB) ?? null;
}

/** Ends a READY mirror on the source (cancel = complete without pivot: the destination keeps the copy). */
export async function finishMirror(src: QmpClient, timeoutMs = 30_000): Promise<void> {
  const mark = src.mark();
  await src.execute('block-job-cancel', { device: MIRROR_JOB });
  await src.waitForEvent('BLOCK_JOB_COMPLETED', (e) => e.data?.device === MIRROR_JOB, timeoutMs, { since: mark });
}

/** Abandons a mirror (migration failed: the source keeps its disk). Never fails. */
export async function abandonMirror(src: QmpClient): Promise<void> {
  await src.execute('block-job-cancel', { device: MIRROR_JOB, force: true }).catch(() => undefined);
}

/** Destination: stops exporting (its guest runs on the copy now). */
export async function stopExport(dst: QmpClient): Promise<void> {
  await dst.execute('block-export-del', { id: DISK_NODE }).catch(() => undefined);
  await dst.execute('nbd-server-stop');
}
