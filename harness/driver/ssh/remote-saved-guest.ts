/**
 * Saved booted guests on a server (the qemu back end of the ssh driver), as
 * harness/hypervisor/saved-guest.ts does on this machine: a guest booted to the
 * point where /init waits for its configuration is saved once per key (image,
 * memory, vCPUs, machine, CPU model, accelerator, MAC, the server's QEMU,
 * kernel and CPU) into the server's cache directory, and every later guest
 * with that key is restored from it and given its configuration as one line
 * on its console. A remote console is a file; a restored guest's console is
 * also a unix socket there, reached through SSH only to write that line.
 */
import { randomBytes } from 'node:crypto';
import {
  configLine,
  hostIdentityOf,
  keyOf,
  loadSavedGuest,
  restoreOrBoot,
  savedGuestId,
  saveWaitingGuest,
  waitingOptions,
  type SavedGuest,
} from '../../hypervisor/saved-guest.ts';
import { chooseEvictions, evictionNote, LIST_SCRIPT, parseCacheListing, savedGuestsMaxBytes } from '../../hypervisor/saved-guest-cache.ts';
import { QEMU_BINARY } from '../../hypervisor/version.ts';
import { errorMessage } from '../../util/errors.ts';
import type { SshConnection } from '../../ssh/connection.ts';
import { isOwnRemoteDir, shScript } from './remote-host.ts';
import { startRemoteVm, type RemoteVmOptions, type RemoteVmProcess } from './remote-vm.ts';

/** The servers' cache of saved guests (kept between runs, like the images beside it). */
export const REMOTE_SAVED_GUEST_DIR = '/var/tmp/migbench/saved-guests';

/** Prints the first line of `qemu --version`, the kernel release and /proc/cpuinfo's first model name line. */
export const IDENTITY_SCRIPT = '"$1" --version | head -n 1; uname -r; grep -m 1 "^model name" /proc/cpuinfo || true';

/** What a server's saved guests depend on besides the guest itself. */
export interface ServerIdentity {
  qemu: string;
  host: string;
}

export function parseIdentity(out: string): ServerIdentity | null {
  const [qemu = '', kernel = '', model = ''] = out.split('\n').map((l) => l.trim());
  if (!/version \d+\.\d+/.test(qemu) || !kernel) return null;
  return { qemu, host: hostIdentityOf(kernel, model) };
}

/**
 * Exit 0 when saved guest directory $1 is complete (meta.json is written last); then its mtime is set: the
 * cache bound (saved-guest-cache.ts) removes the least recently used.
 */
export const FOUND_SCRIPT = 'test -s "$1/guest.mig" && test -s "$1/meta.json" && { touch -c -- "$1" 2>/dev/null || true; }';

/**
 * Moves the made directory $1 to $2 in one rename. When another maker (a concurrent run, or a second
 * server sharing the disk) got there first, its complete copy wins and ours is removed.
 */
export const COMMIT_SCRIPT =
  'mv -T -- "$1" "$2" 2>/dev/null && exit 0; ' +
  'if test -s "$2/meta.json"; then rm -rf -- "$1"; exit 0; fi; echo "cannot move $1 to $2" >&2; exit 1';

/**
 * Creates the maker's directory $2 in the cache $1, first removing what makers killed mid-way left there
 * (temporary directories untouched for an hour: a live maker writes its stream within minutes).
 */
export const MKTMP_SCRIPT =
  'mkdir -p -- "$1" && find "$1" -mindepth 1 -maxdepth 1 -name ".tmp-*" -mmin +60 -exec rm -rf -- {} + ; mkdir -- "$2"';

/** How a guest start on a server is told about QEMUs it starts (the saving guest too), for teardown after a crash. */
export interface GuestHooks {
  onGuest?: (pid: number, pidFile: string) => void;
  onGuestGone?: (pid: number) => void;
}

/**
 * Saved guests on the servers, per run: each server's identity is read once, and a saved guest is
 * made at most once per server and key even when several guests start at once.
 */
export class RemoteSavedGuests {
  private identities = new Map<string, Promise<ServerIdentity>>();
  private making = new Map<string, { p: Promise<SavedGuest>; done: boolean }>();

  constructor(
    readonly root: string = REMOTE_SAVED_GUEST_DIR,
    private readonly bootTimeoutMs = 180_000,
    /** Bound on each server's cache (MIGBENCH_SAVED_GUESTS_MAX_MB: read here, so a bad value stops the run before it starts). */
    private readonly maxBytes = savedGuestsMaxBytes(),
  ) {
    if (!isOwnRemoteDir(`${root}/x`)) throw new Error(`saved guest directory ${root} must be absolute and under a migbench directory`);
  }

  identity(conn: SshConnection): Promise<ServerIdentity> {
    let p = this.identities.get(conn.name);
    if (!p) {
      p = conn.exec(shScript(IDENTITY_SCRIPT, QEMU_BINARY), { label: 'reading the QEMU version, kernel and CPU' }).then((r) => {
        const id = r.code === 0 ? parseIdentity(r.stdout) : null;
        if (!id) throw conn.error(`cannot read the QEMU version, kernel and CPU: ${r.stderr.trim() || r.stdout.trim()}`);
        return id;
      });
      p.catch(() => this.identities.delete(conn.name));
      this.identities.set(conn.name, p);
    }
    return p;
  }

  /** The saved guest for `o` on this server: found in its cache, or made now (boot, save, commit). */
  async ensure(conn: SshConnection, o: RemoteVmOptions, hooks: GuestHooks): Promise<SavedGuest> {
    const who = await this.identity(conn);
    const key = keyOf(o, who.qemu, who.host);
    const id = savedGuestId(key);
    const k = `${conn.name}|${id}`;
    const known = this.making.get(k);
    // a start joining a make in progress waited for it (made_ms is inside its ready time); a later one found it made;
    // what making it removed from the cache is the maker's to say
    if (known) {
      const joined = !known.done;
      const { note: _maker, ...made } = await known.p;
      if (joined) return made;
      // marked used as a found one is (FOUND_SCRIPT), beside the start rather than before it: a campaign that uses it
      // for hours keeps it out of another run's cache bound
      void conn.exec(['touch', '-c', '--', `${this.root}/${id}`], { timeoutMs: 30_000 }).catch(() => undefined);
      return { ...made, madeMs: null };
    }
    const entry = { p: this.findOrMake(conn, o, id, key, hooks), done: false };
    this.making.set(k, entry);
    entry.p.then(
      () => (entry.done = true),
      () => this.making.delete(k),
    );
    return entry.p;
  }

  private async findOrMake(
    conn: SshConnection,
    o: RemoteVmOptions,
    id: string,
    key: ReturnType<typeof keyOf>,
    hooks: GuestHooks,
  ): Promise<SavedGuest> {
    const dir = `${this.root}/${id}`;
    const file = `${dir}/guest.mig`;
    const found = await conn.exec(shScript(FOUND_SCRIPT, dir), { label: `looking for saved guest ${id}` });
    if (found.code === 0) return { id, file, madeMs: null };

    const t0 = Date.now();
    const tmp = `${this.root}/.tmp-${id}-${randomBytes(4).toString('hex')}`;
    await conn.run(shScript(MKTMP_SCRIPT, this.root, tmp), { label: `creating ${tmp}` });
    let vm: RemoteVmProcess | undefined;
    try {
      vm = await startRemoteVm(conn, {
        ...waitingOptions(o),
        serialInput: false,
        boot: undefined,
        fileStem: `${o.fileStem ?? o.name}.save`,
      });
      hooks.onGuest?.(vm.pid, vm.remote.pidFile);
      const saver = vm;
      void saver.exited.then(() => hooks.onGuestGone?.(saver.pid));
      const waiting = await saveWaitingGuest(vm, `file:${tmp}/guest.mig`, `saving guest ${id} on ${conn.name}`, this.bootTimeoutMs);
      await vm.quit();
      vm = undefined;
      const meta = { id, key, boot_ms: waiting - t0, save_ms: Date.now() - waiting, savedAt: new Date().toISOString() };
      await conn.run(shScript('cat > "$1"', `${tmp}/meta.json`), { stdin: JSON.stringify(meta, null, 2), label: 'writing meta.json' });
      await conn.run(shScript(COMMIT_SCRIPT, tmp, dir), { label: `storing saved guest ${id}` });
    } finally {
      await vm?.kill(2000).catch(() => undefined);
      await conn.exec(['rm', '-rf', '--', tmp], { timeoutMs: 30_000 }).catch(() => undefined);
    }
    const madeMs = Date.now() - t0;
    // the guest is made: a cache that cannot be bounded now is said, not worth a cold boot
    const note = await this.bound(conn, id).catch((e: unknown) => `saved guests on ${conn.name}: not bounded (${errorMessage(e)})`);
    return { id, file, madeMs, ...(note ? { note } : {}) };
  }

  /** Removes the server's least recently used saved guests (never `keep`) until its cache is under the bound. */
  private async bound(conn: SshConnection, keep: string): Promise<string | null> {
    const listed = await conn.run(shScript(LIST_SCRIPT, this.root), { label: 'listing the saved guests' });
    // ages by the server's clock, which its mtimes are in
    const { nowMs, entries } = parseCacheListing(listed.stdout);
    if (nowMs === null) throw new Error(`unexpected listing: ${listed.stdout.slice(0, 200)}`);
    const removed = chooseEvictions(entries, { maxBytes: this.maxBytes, keep, nowMs });
    if (removed.length)
      await conn.run(['rm', '-rf', '--', ...removed.map((e) => `${this.root}/${e.id}`)], {
        label: 'removing saved guests',
        timeoutMs: 60_000,
      });
    return evictionNote(`on ${conn.name}`, entries, removed, this.maxBytes);
  }

  /** Removes a saved guest QEMU could not load (and forgets it was made), so the next start makes a new one. */
  async discard(conn: SshConnection, id: string): Promise<void> {
    this.making.delete(`${conn.name}|${id}`);
    await conn.exec(['rm', '-rf', '--', `${this.root}/${id}`], { timeoutMs: 30_000 }).catch(() => undefined);
  }

  /**
   * Starts `o` on the server: restored from its saved guest when `o` allows it (coldBootReason), cold-booted
   * otherwise or when making or loading the saved guest fails (the guest's `boot` says which, and why).
   */
  start(conn: SshConnection, o: RemoteVmOptions, force: 'auto' | 'cold' | undefined, hooks: GuestHooks): Promise<RemoteVmProcess> {
    // any failure on the way (a full cache disk, a stream QEMU cannot load, a lost connection) costs a cold boot
    return restoreOrBoot<RemoteVmProcess>(o, force, {
      boot: (boot) => startRemoteVm(conn, boot ? { ...o, boot } : o),
      restore: async () => this.restore(conn, o, await this.ensure(conn, o, hooks)),
      discard: (id) => this.discard(conn, id),
    });
  }

  private async restore(conn: SshConnection, o: RemoteVmOptions, saved: SavedGuest): Promise<RemoteVmProcess> {
    const vm = await startRemoteVm(conn, {
      ...waitingOptions(o),
      incoming: 'defer',
      fileStem: o.fileStem ?? o.name,
      serialInput: true,
      boot: { mode: 'restored', from: saved.id, reason: null, made_ms: saved.madeMs },
      ...(saved.note ? { startNote: saved.note } : {}),
    });
    try {
      await loadSavedGuest(vm, `file:${saved.file}`, saved.id, 60_000);
      // the wall clock of the controller: the servers' offsets are milliseconds, the guest's clock takes seconds
      await vm.sendSerial(`${configLine(o, Date.now())}\n`);
    } catch (e) {
      await vm.kill(2000).catch(() => undefined);
      throw e;
    }
    return vm;
  }
}
