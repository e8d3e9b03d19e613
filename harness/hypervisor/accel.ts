/**
 * Chooses the accelerator. KVM is used only if /dev/kvm is usable AND a real
 * KVM guest boots to its readiness marker: on some hosts /dev/kvm exists but
 * QEMU aborts creating the vCPU (a paused machine shows it in ~0.3 s) or the
 * guest hangs in early boot (its console falls silent: found in ~5 s), and we
 * fall back to TCG.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GuestImage } from '../image/build.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { cacheDir } from '../util/paths.ts';
import { KVM_START_ARGV, KVM_START_QMP_INPUT, kvmStartVerdict } from '../driver/ssh/kvm-probe.ts';
import { run, withPdeathsig } from '../util/exec.ts';
import { startVm, type VmProcess } from './qemu.ts';
import { qemuVersion, type Accel } from './version.ts';
import { within } from '../util/timers.ts';

export { qemuVersion, assertQemuUsable, checkQemuUsable, parseQemuVersion, type Accel, type QemuVersionInfo } from './version.ts';

export interface AccelChoice {
  accel: Accel;
  /** Why, in words, for the run manifest. */
  reason: string;
}

export interface ProbeOptions {
  /** Where the probe VM's socket and log go (default: a fresh temp dir, removed after). */
  runDir?: string;
  /** Bound for the KVM guest to print MB-READY while it makes progress (default 30 s; it takes ~2 s when KVM works). */
  bootTimeoutMs?: number;
  /** A KVM guest whose console is silent this long is hung (default 5 s; a booting TCG guest's longest silence here was 5.8 s, KVM's far less). */
  stallMs?: number;
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

/**
 * Whether QEMU can create and reset a KVM vCPU here: a paused machine, asked
 * its status over QMP on stdin, then quit (~0.3 s). Catches QEMU aborting at
 * vCPU reset (e.g. "failed to set MSR"), the common way KVM fails here.
 */
async function pausedVcpuProbe(cpu: string | undefined): Promise<{ ok: boolean; detail: string }> {
  const argv = KVM_START_ARGV.slice(1).map((a, i, all) => (cpu && all[i - 1] === '-cpu' ? cpu : a));
  const [cmd, args] = withPdeathsig(KVM_START_ARGV[0], argv);
  try {
    const r = await run(cmd, args, { input: KVM_START_QMP_INPUT, allowFail: true, timeoutMs: 20_000 });
    return kvmStartVerdict(`${r.stdout}\n${r.stderr}`, r.exitCode);
  } catch (e) {
    if (e instanceof UserError) throw e; // QEMU or setpriv missing: not a KVM problem
    return { ok: false, detail: `paused KVM machine: ${errorMessage(e).split('\n')[0]}` };
  }
}

/**
 * Waits for `marker` while the guest shows progress: every kernel message is
 * printed from the first instruction (earlyprintk, ignore_loglevel), so a
 * console silent for `stallMs` is a hang, found in seconds rather than at the
 * overall bound. A guest that stopped (internal error, panic) fails at once.
 */
async function waitWhileProgressing(vm: VmProcess, marker: RegExp, stallMs: number, capMs: number): Promise<void> {
  const t0 = Date.now();
  let last = t0;
  let lines = 0;
  const off = vm.onSerialLine(() => {
    last = Date.now();
    lines++;
  });
  let ready = false;
  const seen = vm.waitForSerial(marker, capMs).then(() => {
    ready = true;
  });
  seen.catch(() => undefined);
  try {
    while (!ready) {
      await within(seen, 250);
      if (ready) return;
      const now = Date.now();
      if (now - last > stallMs) {
        throw new Error(
          `the KVM guest stopped making progress: no console output for ${((now - last) / 1000).toFixed(1)} s after ${lines} lines`,
        );
      }
      const st = await vm.qmp.execute<{ status: string }>('query-status', {}, { timeoutMs: 2000 });
      if (st.status !== 'running') throw new Error(`the KVM guest is ${st.status}`);
    }
  } finally {
    off();
  }
}

/** The paused-vCPU check, then a KVM boot watched for progress; resolves to a choice, never throws for a KVM failure. */
async function bootProbe(image: GuestImage, opts: ProbeOptions): Promise<AccelChoice> {
  const bootTimeoutMs = opts.bootTimeoutMs ?? 30_000;
  const t0 = Date.now();
  const paused = await pausedVcpuProbe(opts.cpu);
  if (!paused.ok)
    return { accel: 'tcg', reason: `/dev/kvm exists but a KVM guest did not boot (${paused.detail}; ${Date.now() - t0} ms); using TCG` };
  const runDir = opts.runDir ?? mkdtempSync(join(tmpdir(), 'migbench-accel-'));
  let vm: VmProcess | undefined;
  try {
    // dieWithHarness: a kill -9 of the harness must not leave this QEMU behind (it runs in no testbed namespace)
    vm = await startVm({
      name: 'accel-probe',
      accel: 'kvm',
      cpu: opts.cpu,
      memoryMiB: 128,
      image,
      runDir,
      cmdlineExtra: ['ignore_loglevel', 'earlyprintk=serial,ttyS0,115200'],
      startTimeoutMs: bootTimeoutMs,
      dieWithHarness: true,
    });
    await waitWhileProgressing(vm, /MB-READY/, opts.stallMs ?? 5000, bootTimeoutMs);
    return { accel: 'kvm', reason: `a KVM guest booted to MB-READY in ${Date.now() - t0} ms` };
  } catch (e) {
    if (e instanceof UserError) throw e; // e.g. QEMU missing: not a KVM problem
    const msg = errorMessage(e).split('\n')[0];
    return { accel: 'tcg', reason: `/dev/kvm exists but a KVM guest did not boot (${msg}; ${Date.now() - t0} ms); using TCG` };
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
