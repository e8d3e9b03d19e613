/**
 * Guests ready in about a second: a booted guest is saved once (QEMU
 * migrates the paused guest to a file) per image, memory, vCPUs, machine,
 * CPU model, accelerator, NIC MAC and QEMU version, and restored for every
 * treatment instead of booting. The saved guest stopped in /init before
 * reading its configuration (kernel parameter mb.wait=1); the restored copy
 * gets the same mb.* words as one line on its serial console (plus mb.now,
 * the wall clock), then goes on exactly as a cold-booted guest does.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { GuestBoot } from '../store/schema/guest-start.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { cacheDir } from '../util/paths.ts';
import { boundLocalCache, savedGuestsMaxBytes } from './saved-guest-cache.ts';
import { sleep } from '../util/time.ts';
import { guestCmdline, startVm, type StartVmOptions, type VmProcess } from './qemu.ts';
import { qemuVersion } from './version.ts';

/** Bump when what a saved guest contains changes in a way its key does not show. */
const FORMAT = 1;

/** The kernel parameter that makes /init wait for its configuration on the console. */
export const WAIT_WORD = 'mb.wait=1';

/** Everything that must be equal between the saved guest and the QEMU restoring it. */
export interface SavedGuestKey {
  imageHash: string;
  memoryMiB: number;
  vcpus: number;
  machine: string;
  cpu: string;
  accel: string;
  /** NIC MAC (QEMU migrates virtio-net's MAC), or null without a NIC. */
  mac: string | null;
  /** First line of qemu --version. */
  qemu: string;
  /** Host kernel and CPU (a `-cpu host` guest depends on them). */
  host: string;
}

/** Content-addressed id of a saved guest (16 hex digits). */
export function savedGuestId(k: SavedGuestKey): string {
  const ordered = [FORMAT, k.imageHash, k.memoryMiB, k.vcpus, k.machine, k.cpu, k.accel, k.mac ?? 'no-nic', k.qemu, k.host];
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex').slice(0, 16);
}

/** The line a restored guest reads: the cold boot's mb.* words plus the wall clock. */
export function configLine(o: Pick<StartVmOptions, 'name' | 'ip' | 'gw' | 'workload' | 'httpd'>, nowMs: number): string {
  const words = guestCmdline(o)
    .split(' ')
    .filter((w) => w.startsWith('mb.'));
  return [...words, `mb.now=${Math.floor(nowMs / 1000)}`].join(' ');
}

/** Why `o` must cold-boot (null: it can be restored). `force` comes from vms[].boot or MIGBENCH_GUEST_BOOT. */
export function coldBootReason(
  o: Pick<StartVmOptions, 'incoming' | 'disk' | 'cmdlineExtra' | 'qemuArgs'>,
  force?: 'auto' | 'cold',
): string | null {
  const env = process.env.MIGBENCH_GUEST_BOOT;
  if (env && env !== 'auto' && env !== 'cold') throw new UserError(`MIGBENCH_GUEST_BOOT must be "auto" or "cold" (got "${env}")`);
  if (force === 'cold') return 'vms[].boot is cold';
  if (env === 'cold') return 'MIGBENCH_GUEST_BOOT=cold';
  if (o.incoming) return 'a migration destination';
  if (o.disk) return 'the VM has a disk';
  if (o.cmdlineExtra?.length) return 'extra kernel parameters';
  if (o.qemuArgs?.length) return 'extra QEMU arguments';
  return null;
}

/** Host kernel and CPU model, as a saved guest's key records them (`release|model`). */
export function hostIdentityOf(kernelRelease: string, cpuinfo: string): string {
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  return `${kernelRelease.trim()}|${model}`;
}

function hostIdentity(): string {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* no /proc: the kernel release alone */
  }
  return hostIdentityOf(release(), cpuinfo);
}

/** The key of `o`'s saved guest on a machine with this QEMU (first line of --version) and host identity. */
export function keyOf(
  o: Pick<StartVmOptions, 'image' | 'memoryMiB' | 'vcpus' | 'machine' | 'cpu' | 'accel' | 'tap'>,
  qemu: string,
  host: string,
): SavedGuestKey {
  return {
    imageHash: o.image.hash,
    memoryMiB: o.memoryMiB,
    vcpus: o.vcpus ?? 1,
    machine: o.machine ?? 'q35',
    cpu: o.cpu ?? (o.accel === 'kvm' ? 'host' : 'max'),
    accel: o.accel,
    mac: o.tap?.mac.toLowerCase() ?? null,
    qemu,
    host,
  };
}

export async function keyFor(o: StartVmOptions): Promise<SavedGuestKey> {
  return keyOf(o, (await qemuVersion()).raw, hostIdentity());
}

export function savedGuestRoot(): string {
  return cacheDir('saved-guests');
}

/** The migration stream of saved guest `id`, when it exists complete. */
export function savedGuestFile(id: string): string | null {
  const dir = join(savedGuestRoot(), id);
  return existsSync(join(dir, 'meta.json')) ? join(dir, 'guest.mig') : null;
}

/** Polls query-migrate until the migration ended; throws on failure, timeout, or QEMU exiting. */
async function migrationEnd(vm: Pick<VmProcess, 'qmp' | 'hasExited'>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (vm.hasExited()) throw new Error(`${what}: QEMU exited`);
    const r = await vm.qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (r.status === 'completed') return;
    if (r.status === 'failed' || r.status === 'cancelled') throw new Error(`${what}: ${r['error-desc'] ?? r.status}`);
    if (Date.now() > end) throw new Error(`${what}: not done within ${timeoutMs} ms (status ${r.status ?? 'none'})`);
    await sleep(20);
  }
}

/** The QEMU options a saved guest is made and restored with: no workload, no address, /init waiting. */
export function waitingOptions<T extends Pick<StartVmOptions, 'ip' | 'gw' | 'workload' | 'httpd' | 'cmdlineExtra'>>(o: T): T {
  return { ...o, ip: undefined, gw: undefined, workload: undefined, httpd: undefined, cmdlineExtra: [WAIT_WORD] };
}

/** Waits for a guest started with waitingOptions to stop in /init, then saves it paused to `uri` (QEMU `file:`); returns when /init stopped (epoch ms). */
export async function saveWaitingGuest(
  vm: Pick<VmProcess, 'qmp' | 'waitForSerial' | 'hasExited'>,
  uri: string,
  what: string,
  bootTimeoutMs: number,
): Promise<number> {
  await vm.waitForSerial(/^MB-WAIT-CONFIG/, bootTimeoutMs);
  const waiting = Date.now();
  await vm.qmp.execute('stop');
  // a stopped guest: one pass, as fast as the disk takes it
  await vm.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 2 ** 40 });
  await vm.qmp.execute('migrate', { uri });
  await migrationEnd(vm, 120_000, what);
  return waiting;
}

/**
 * Loads saved guest `id` from `uri` into a QEMU started with waitingOptions and `incoming: 'defer'`,
 * and runs it (it was saved stopped, so it comes back paused). Throws SavedGuestLoadError when QEMU cannot load it.
 */
export async function loadSavedGuest(vm: Pick<VmProcess, 'qmp' | 'hasExited'>, uri: string, id: string, timeoutMs: number): Promise<void> {
  await vm.qmp.execute('migrate-incoming', { uri });
  // the stream is in when QEMU leaves 'inmigrate'; it exits when the stream does not load
  const end = Date.now() + timeoutMs;
  for (;;) {
    const st = await vm.qmp.execute<{ status: string }>('query-status').catch((e: unknown) => {
      if (vm.hasExited()) throw new SavedGuestLoadError(id, 'QEMU exited while loading it');
      throw e;
    });
    if (st.status === 'running') return;
    if (st.status === 'paused') {
      await vm.qmp.execute('cont');
      continue;
    }
    if (st.status !== 'inmigrate' && st.status !== 'prelaunch') throw new SavedGuestLoadError(id, `QEMU is ${st.status}`);
    if (Date.now() > end) throw new Error(`restoring saved guest ${id}: not running within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export interface SavedGuest {
  id: string;
  /** Its migration stream (QEMU `file:` URI). */
  file: string;
  /** Time spent making it now; null when it was in the cache. */
  madeMs: number | null;
  /** What making it removed from the cache (saved-guest-cache.ts), for the run's log. */
  note?: string;
}

export interface EnsureOptions {
  /** Bound for the guest that is saved to boot to MB-WAIT-CONFIG (default 180 s: TCG on a busy machine). */
  bootTimeoutMs?: number;
}

/**
 * The saved guest for `o`: found in the cache, or made now by booting a guest
 * with o's devices (on o's NIC back end, in o's namespace), saving it paused
 * and storing it under its id. Concurrent makers each write their own
 * temporary directory; the first rename wins, the others discard theirs.
 */
export async function ensureSavedGuest(o: StartVmOptions, opts: EnsureOptions = {}): Promise<SavedGuest> {
  const maxBytes = savedGuestsMaxBytes(); // a bad bound fails before anything is made
  const key = await keyFor(o);
  const id = savedGuestId(key);
  const found = savedGuestFile(id);
  if (found) {
    markUsed(join(savedGuestRoot(), id));
    return { id, file: found, madeMs: null };
  }

  const root = savedGuestRoot();
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.tmp-${id}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  const t0 = Date.now();
  let vm: VmProcess | undefined;
  try {
    vm = await startVm({ ...waitingOptions(o), fileStem: `${o.fileStem ?? o.name}.save` });
    const waiting = await saveWaitingGuest(vm, `file:${join(tmp, 'guest.mig')}`, `saving guest ${id}`, opts.bootTimeoutMs ?? 180_000);
    const bootMs = waiting - t0;
    const meta = {
      id,
      key,
      boot_ms: bootMs,
      save_ms: Date.now() - t0 - bootMs,
      bytes: statSync(join(tmp, 'guest.mig')).size,
    };
    writeFileSync(join(tmp, 'meta.json'), JSON.stringify({ ...meta, savedAt: new Date().toISOString() }, null, 2));
    await vm.kill(2000);
    vm = undefined;
    try {
      renameSync(tmp, join(root, id)); // atomic: users see a complete saved guest or none
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && savedGuestFile(id))) throw e;
      rmSync(tmp, { recursive: true, force: true }); // a concurrent maker won
    }
  } finally {
    await vm?.kill(2000);
    rmSync(tmp, { recursive: true, force: true });
  }
  const file = savedGuestFile(id);
  if (!file) throw new Error(`saved guest ${id} missing after it was made`);
  const madeMs = Date.now() - t0;
  let note: string | null;
  try {
    note = boundLocalCache(root, id, maxBytes);
  } catch (e) {
    note = `saved guests on this machine: not bounded (${errorMessage(e)})`; // the guest is made: not worth a cold boot
  }
  return { id, file, madeMs, ...(note ? { note } : {}) };
}

/** Records that a start found this saved guest (its directory's mtime: the cache bound removes the least recently used). */
function markUsed(dir: string): void {
  const now = new Date();
  try {
    utimesSync(dir, now, now);
  } catch {
    /* a read-only cache still restores */
  }
}

/**
 * Starts `o` from its saved guest: QEMU waiting for an incoming migration,
 * the file loaded (QEMU runs the guest when it is in), then the
 * configuration written to the console. The caller waits for MB-READY.
 */
export async function restoreGuest(o: StartVmOptions, saved: SavedGuest, timeoutMs = 60_000): Promise<VmProcess> {
  const vm = await startVm({ ...waitingOptions(o), incoming: 'defer', fileStem: o.fileStem ?? o.name });
  try {
    await loadSavedGuest(vm, `file:${saved.file}`, saved.id, timeoutMs);
    vm.writeSerial(`${configLine(o, Date.now())}\n`);
  } catch (e) {
    await vm.kill(2000);
    throw e;
  }
  const boot: GuestBoot = { mode: 'restored', from: saved.id, reason: null, made_ms: saved.madeMs };
  return { ...vm, boot, ...(saved.note ? { startNote: saved.note } : {}) };
}

/** QEMU could not load a saved guest (not a timeout): it is removed, so the next start makes a new one. */
export class SavedGuestLoadError extends Error {
  constructor(
    readonly id: string,
    detail: string,
  ) {
    super(`restoring saved guest ${id}: ${detail}`);
  }
}

export function discardSavedGuest(id: string): void {
  rmSync(join(savedGuestRoot(), id), { recursive: true, force: true });
}

/** How a driver starts a guest, for restoreOrBoot. */
export interface GuestStarter<V> {
  /** Boots it (with `boot` recorded on the result; null for a migration destination, which records none). */
  boot(boot: GuestBoot | null): Promise<V>;
  /** Finds or makes its saved guest and restores it. */
  restore(): Promise<V>;
  /** Removes saved guest `id` after QEMU could not load it. */
  discard(id: string): Promise<void> | void;
  /** Errors that end the start instead of costing a cold boot (default: none). */
  fatal?(e: unknown): boolean;
}

/**
 * The restore-or-boot decision both drivers share: a migration destination starts as asked; a
 * guest that must cold-boot (coldBootReason) boots, saying why; otherwise it is restored, and a
 * failure on the way costs a cold boot whose reason says what failed (a saved guest QEMU could
 * not load is removed first, so the next start makes a new one).
 */
export async function restoreOrBoot<V>(
  o: Pick<StartVmOptions, 'incoming' | 'disk' | 'cmdlineExtra' | 'qemuArgs'>,
  force: 'auto' | 'cold' | undefined,
  how: GuestStarter<V>,
): Promise<V> {
  if (o.incoming) return how.boot(null);
  const why = coldBootReason(o, force);
  if (why !== null) return how.boot({ mode: 'cold', from: null, reason: why, made_ms: null });
  let failure: string;
  try {
    return await how.restore();
  } catch (e) {
    if (how.fatal?.(e)) throw e;
    if (e instanceof SavedGuestLoadError) await how.discard(e.id);
    failure = `no restore (${errorMessage(e).split('\n')[0]})`;
  }
  return how.boot({ mode: 'cold', from: null, reason: failure, made_ms: null });
}

/** The local driver's guest start: restoreOrBoot with this machine's cache and QEMU. */
export function startGuestFast(o: StartVmOptions, force?: 'auto' | 'cold'): Promise<VmProcess> {
  return restoreOrBoot<VmProcess>(o, force, {
    boot: async (boot) => {
      const vm = await startVm(o);
      return boot ? { ...vm, boot } : vm;
    },
    restore: async () => restoreGuest(o, await ensureSavedGuest(o)),
    discard: discardSavedGuest,
    fatal: (e) => e instanceof UserError,
  });
}
