/**
 * Chooses the accelerator. KVM is used only if /dev/kvm is usable AND a real
 * KVM guest boots to its readiness marker in time: on some hosts /dev/kvm
 * exists but guests hang in early boot, so we boot one and fall back to TCG.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GuestImage } from '../image/build.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { cacheDir } from '../util/paths.ts';
import { startVm, type VmProcess } from './qemu.ts';
import { qemuVersion, type Accel } from './version.ts';

export { qemuVersion, assertQemuUsable, checkQemuUsable, parseQemuVersion, type Accel, type QemuVersionInfo } from './version.ts';

export interface AccelChoice {
  accel: Accel;
  /** Why, in words, for the run manifest. */
  reason: string;
}

export interface ProbeOptions {
  /** Where the probe VM's socket and log go (default: a fresh temp dir, removed after). */
  runDir?: string;
  /** Bound for the KVM guest to print MB-READY (default 30 s; it takes ~2 s when KVM works). */
  bootTimeoutMs?: number;
  /** How long a probe result stays valid on disk (default 1 h; 0 disables the disk cache). */
  diskTtlMs?: number;
  /** Ignore cached results. */
  fresh?: boolean;
  /** CPU model for the probe guest (default host; tests use one that hangs). */
  cpu?: string;
  /** /dev/kvm path (tests). */
  kvmDevice?: string;
}

interface DiskEntry extends AccelChoice {
  key: string;
  at: number;
}

const memo = new Map<string, Promise<AccelChoice>>();

function diskCachePath(): string {
  return cacheDir('accel-probe.json');
}

function readDisk(key: string, ttlMs: number): AccelChoice | null {
  try {
    const entries = JSON.parse(readFileSync(diskCachePath(), 'utf8')) as DiskEntry[];
    const e = entries.find((x) => x.key === key && Date.now() - x.at < ttlMs);
    return e ? { accel: e.accel, reason: `${e.reason} (probed ${new Date(e.at).toISOString()})` } : null;
  } catch {
    return null;
  }
}

function writeDisk(key: string, c: AccelChoice): void {
  let entries: DiskEntry[] = [];
  try {
    entries = JSON.parse(readFileSync(diskCachePath(), 'utf8')) as DiskEntry[];
  } catch {
    /* none yet */
  }
  entries = entries
    .filter((x) => x.key !== key)
    .concat({ ...c, key, at: Date.now() })
    .slice(-20);
  mkdirSync(dirname(diskCachePath()), { recursive: true });
  writeFileAtomic(diskCachePath(), JSON.stringify(entries, null, 2));
}

/** Boots the image under KVM; resolves to a choice, never throws for a KVM failure. */
async function bootProbe(image: GuestImage, opts: ProbeOptions): Promise<AccelChoice> {
  const bootTimeoutMs = opts.bootTimeoutMs ?? 30_000;
  const runDir = opts.runDir ?? mkdtempSync(join(tmpdir(), 'migbench-accel-'));
  let vm: VmProcess | undefined;
  const t0 = Date.now();
  try {
    // dieWithHarness: a kill -9 of the harness must not leave this QEMU behind (it runs in no testbed namespace)
    vm = await startVm({
      name: 'accel-probe',
      accel: 'kvm',
      cpu: opts.cpu,
      memoryMiB: 128,
      image,
      runDir,
      startTimeoutMs: bootTimeoutMs,
      dieWithHarness: true,
    });
    await vm.waitForSerial(/MB-READY/, bootTimeoutMs);
    return { accel: 'kvm', reason: `a KVM guest booted to MB-READY in ${Date.now() - t0} ms` };
  } catch (e) {
    if (e instanceof UserError) throw e; // e.g. QEMU missing: not a KVM problem
    const msg = errorMessage(e).split('\n')[0];
    return { accel: 'tcg', reason: `/dev/kvm exists but a KVM guest did not boot (${msg}); using TCG` };
  } finally {
    await vm?.kill(2000); // this probe's QEMU only, by PID
    if (!opts.runDir) rmSync(runDir, { recursive: true, force: true });
  }
}

/**
 * KVM if it works here, TCG otherwise, with the reason. Set MIGBENCH_ACCEL
 * to kvm or tcg to skip probing. Cached per process (per image) and on disk
 * keyed by guest kernel, QEMU and host kernel versions.
 */
export function probeAccelerator(image: GuestImage, opts: ProbeOptions = {}): Promise<AccelChoice> {
  const forced = process.env.MIGBENCH_ACCEL;
  if (forced) {
    if (forced !== 'kvm' && forced !== 'tcg') {
      return Promise.reject(new UserError(`MIGBENCH_ACCEL must be "kvm" or "tcg" (got "${forced}")`));
    }
    return Promise.resolve({ accel: forced, reason: 'forced by MIGBENCH_ACCEL' });
  }
  const memoKey = `${image.hash}|${opts.cpu ?? ''}`;
  const hit = memo.get(memoKey);
  if (hit && !opts.fresh) return hit;
  const p = (async (): Promise<AccelChoice> => {
    const dev = opts.kvmDevice ?? '/dev/kvm';
    if (!existsSync(dev)) return { accel: 'tcg', reason: `${dev} does not exist (no KVM on this host); using TCG` };
    try {
      accessSync(dev, constants.R_OK | constants.W_OK);
    } catch {
      return { accel: 'tcg', reason: `${dev} is not accessible to this user (add it to group kvm); using TCG` };
    }
    const v = await qemuVersion();
    const key = `${image.kernelVersion}|${v.raw}|${release()}|${opts.cpu ?? ''}`;
    const ttl = opts.diskTtlMs ?? 3_600_000;
    if (ttl > 0 && !opts.fresh) {
      const cached = readDisk(key, ttl);
      if (cached) return cached;
    }
    const choice = await bootProbe(image, opts);
    if (ttl > 0) writeDisk(key, choice);
    return choice;
  })();
  memo.set(memoKey, p);
  p.catch(() => memo.delete(memoKey));
  return p;
}
