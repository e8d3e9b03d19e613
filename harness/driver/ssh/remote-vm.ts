/**
 * The `qemu` back end of the ssh driver: one QEMU guest on a server reached
 * over SSH, behind the same VmProcess interface as a local guest.
 *
 * QEMU is started with -daemonize -pidfile (its own session: a lost SSH
 * connection does not end the guest). QMP is its unix socket in the run
 * directory on the server, reached through ssh2's streamlocal forwarding. The
 * serial console goes to a file there, followed by a remote
 * `tail -F --pid=<qemu>`: its lines feed the usual SerialConsole parser and a
 * copy on the controller, and its normal end (tail ends after QEMU did, having
 * read the file to the end) is how the end of QEMU is observed. A connection
 * loss restarts the tail at the byte where it stopped; it never counts as an exit.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { qemuArgs, type StartVmOptions, type VmExit, type VmProcess } from '../../hypervisor/qemu.ts';
import type { GuestBoot } from '../../store/schema/guest-start.ts';
import { QmpClient } from '../../hypervisor/qmp.ts';
import { SerialConsole } from '../../hypervisor/serial.ts';
import { QEMU_BINARY } from '../../hypervisor/version.ts';
import type { SshConnection } from '../../ssh/connection.ts';
import { UserError, errorMessage } from '../../util/errors.ts';
import { sleep } from '../../util/time.ts';
import { createRemoteTap, deleteRemoteTap, shScript } from './remote-host.ts';
import { SerialCopy } from './serial-copy.ts';
import { within } from '../../util/timers.ts';

export interface RemoteVmOptions extends Omit<StartVmOptions, 'netns' | 'dieWithHarness' | 'runDir'> {
  /** `image` has the server's kernel/initrd paths (ensureImage). */
  /** Directory on the server for the QMP socket, pidfile and serial log (created with mkdir -p). */
  remoteDir: string;
  /** Directory on the controller where a copy of the serial log is written as it arrives. */
  localDir: string;
  /** The console also takes input (sendSerial), on a unix socket next to the log: a restored guest reads its configuration there. */
  serialInput?: boolean;
  /** How the guest came up (a restored guest; see remote-saved-guest.ts). */
  boot?: GuestBoot;
  /** A line for the run's log about its start (VmProcess.startNote). */
  startNote?: string;
  /** Settles once the guest's tap exists (startRemoteGuest creates it meanwhile); awaited just before QEMU starts. */
  tapReady?: Promise<void>;
}

export interface RemoteVmPaths {
  qmp: string;
  pidFile: string;
  serialLog: string;
  /** The console's input socket (with serialInput). */
  serialSock: string;
}

/** A guest on a server. `qmp` is the current QMP client (see reopenQmp). */
export interface RemoteVmProcess extends VmProcess {
  /** Inventory name of the server. */
  readonly host: string;
  readonly remote: RemoteVmPaths & { dir: string };
  /** Times the serial follower had to reconnect (SSH connection lost and re-established). */
  serialReconnects(): number;
  /**
   * A fresh QMP connection after the old one was lost with the SSH connection
   * (events in between are lost; listeners on the old client do not move over).
   */
  reopenQmp(): Promise<QmpClient>;
  /** Writes to the guest console through its input socket (started with serialInput); resolves once QEMU took it. */
  sendSerial(text: string): Promise<void>;
}

const MAX_UNIX_PATH = 107;

export function remoteVmPaths(remoteDir: string, stem: string): RemoteVmPaths {
  const d = remoteDir.replace(/\/+$/, '');
  return {
    qmp: `${d}/${stem}.qmp`,
    pidFile: `${d}/${stem}.pid`,
    serialLog: `${d}/${stem}.serial.log`,
    serialSock: `${d}/${stem}.serial.sock`,
  };
}

/**
 * Exit 3 with "LIVE <pid>" when the pidfile names a live QEMU of ours (its argv
 * holds the pidfile path); otherwise creates the directory and clears stale
 * files, so an old serial log can never satisfy a wait for MB-READY.
 */
export const PREPARE_SCRIPT = [
  'd=$1; p=$2; q=$3; s=$4',
  'if [ -s "$p" ]; then pid=$(cat -- "$p"); case $pid in *[!0-9]*|"") ;; *)',
  '  if tr "\\000" "\\n" < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$p"; then echo "LIVE $pid"; exit 3; fi;; esac; fi',
  'mkdir -p -- "$d" && rm -f -- "$p" "$q" "$s"',
].join('\n');

/** Starts the daemonizing QEMU ("$@" after the pidfile), then prints its PID. */
export const START_SCRIPT = 'p=$1; shift; "$@" || exit $?; exec cat -- "$p"';

/** Exit 0 when PID $1 is our QEMU (argv holds the pidfile $2); with $3, sends that signal to it. */
export const SIGNAL_SCRIPT =
  'tr "\\000" "\\n" < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2" || exit 3; [ -z "$3" ] || kill -s "$3" "$1"';

/**
 * Exit 0 while PID $1 is still our QEMU (argv holds the pidfile $2); once it is not, removes the
 * pidfile and the QMP socket $3 (QEMU removes its pidfile, not a socket left by SIGKILL) and exits 3:
 * noticing the end and clearing after it is one round trip, at the end of every migration's source.
 */
export const GONE_SCRIPT = 'tr "\\000" "\\n" < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2" && exit 0; rm -f -- "$2" "$3"; exit 3';

/** Follows the serial log from byte `fromByte` (0-based) until QEMU `pid` has ended and the file is read to its end. */
export function serialTailArgv(serialLog: string, pid: number, fromByte: number): string[] {
  return ['tail', '-c', `+${fromByte + 1}`, '-F', `--pid=${pid}`, '-s', '0.1', serialLog];
}

/** The PID printed by START_SCRIPT (the pidfile's content). */
export function parsePid(out: string): number | null {
  const t = out.trim();
  return /^[1-9]\d*$/.test(t) ? Number(t) : null;
}

/** Starts QEMU on the server behind `conn`; resolves once QMP answers (an incoming VM is paused then). */
export async function startRemoteVm(conn: SshConnection, o: RemoteVmOptions): Promise<RemoteVmProcess> {
  const host = conn.name;
  if (!o.remoteDir.startsWith('/'))
    throw new UserError(`VM ${o.name} on ${host}: remote directory must be absolute (got "${o.remoteDir}")`);
  const stem = o.fileStem ?? (o.incoming ? `${o.name}.in` : o.name);
  const paths = remoteVmPaths(o.remoteDir, stem);
  for (const sock of o.serialInput ? [paths.qmp, paths.serialSock] : [paths.qmp])
    if (sock.length > MAX_UNIX_PATH)
      throw new UserError(`socket path ${sock} on ${host} is longer than ${MAX_UNIX_PATH} bytes; use a shorter remote directory`);
  const startTimeoutMs = o.startTimeoutMs ?? 60_000;
  const args = [
    ...qemuArgs(
      { ...o, runDir: o.remoteDir },
      o.serialInput
        ? { qmp: paths.qmp, serialLog: paths.serialLog, serial: 'socket', serialSocket: paths.serialSock }
        : { qmp: paths.qmp, serialLog: paths.serialLog, serial: 'file' },
    ),
    '-daemonize',
    '-pidfile',
    paths.pidFile,
  ];
  const argv = [QEMU_BINARY, ...args];

  const prep = await conn.exec(shScript(PREPARE_SCRIPT, o.remoteDir, paths.pidFile, paths.qmp, paths.serialLog), {
    label: `preparing ${o.remoteDir} for VM ${o.name}`,
  });
  if (prep.code === 3)
    throw new UserError(
      `VM ${o.name} on ${host}: a QEMU of ours (${prep.stdout.trim()}) already runs with ${paths.pidFile}; use a different VM name or directory`,
    );
  if (prep.code !== 0) throw conn.error(`cannot prepare ${o.remoteDir} for VM ${o.name}: ${prep.stderr.trim() || prep.stdout.trim()}`);

  await o.tapReady;
  const started = await conn.exec(shScript(START_SCRIPT, paths.pidFile, ...argv), {
    label: `starting QEMU for VM ${o.name}`,
    timeoutMs: startTimeoutMs,
  });
  const pid = started.code === 0 ? parsePid(started.stdout) : null;
  if (pid === null) {
    const said = (started.stderr.trim() || started.stdout.trim()).slice(0, 1500);
    const msg = `QEMU for VM ${o.name} did not start on ${host}: ${said || `exit ${started.code}`}`;
    await conn.exec(['rm', '-f', '--', paths.pidFile, paths.qmp], { timeoutMs: 10_000 }).catch(() => undefined);
    // QEMU's own complaint about the tap, the accelerator or a path is fixable by the user
    if (/could not (open|configure)|Cannot find device|Permission denied|No such file|failed to initialize kvm|not found/i.test(said))
      throw conn.error(msg);
    throw new Error(msg);
  }

  /** Sends a signal to exactly this QEMU; false when that PID is no longer it. */
  const signal = async (sig: 'TERM' | 'KILL' | ''): Promise<boolean> => {
    const r = await conn.exec(shScript(SIGNAL_SCRIPT, String(pid), paths.pidFile, sig), {
      label: sig ? `kill -${sig} ${pid} (QEMU of VM ${o.name})` : `checking QEMU ${pid} of VM ${o.name}`,
      timeoutMs: 15_000,
    });
    return r.code === 0;
  };

  mkdirSync(o.localDir, { recursive: true });
  const localLog = new SerialCopy(join(o.localDir, `${stem}.serial.log`));
  const serial = new SerialConsole(o.name);

  let exitInfo: VmExit | null = null;
  let lastSignal: NodeJS.Signals | null = null;
  let quitSent = false;
  let resolveExited!: (x: VmExit) => void;
  const exited = new Promise<VmExit>((r) => (resolveExited = r));
  let bytes = 0;
  let reconnects = 0;
  let following = true;

  /** True once this QEMU is gone (its pidfile and socket removed then); an SSH failure counts as still running. */
  const gone = () =>
    conn
      .exec(shScript(GONE_SCRIPT, String(pid), paths.pidFile, paths.qmp), {
        label: `checking QEMU ${pid} of VM ${o.name}`,
        timeoutMs: 15_000,
      })
      .then(
        (r) => r.code === 3,
        () => false,
      );

  /** QEMU is gone and GONE_SCRIPT cleared after it. */
  const onGone = () => {
    if (exitInfo) return;
    following = false;
    exitInfo = lastSignal ? { code: null, signal: lastSignal } : quitSent ? { code: 0, signal: null } : { code: null, signal: null };
    const why = lastSignal ? `QEMU was killed by ${lastSignal}` : quitSent ? 'QEMU quit' : 'QEMU exited';
    serial.end(`${why} (on ${host})`);
    localLog.end();
    resolveExited(exitInfo);
  };

  // the follower: restarts at the byte where it stopped after an SSH loss; its normal end is QEMU's end
  const follow = async () => {
    let backoff = 200;
    let failures = 0;
    while (following) {
      try {
        let stderr = '';
        const tail = await conn.spawn(serialTailArgv(paths.serialLog, pid, bytes), {
          label: `following the serial console of VM ${o.name}`,
          onStdout: (s) => {
            bytes += Buffer.byteLength(s);
            localLog.write(s);
            serial.push(s);
          },
          onStderr: (s) => (stderr = (stderr + s).slice(-500)),
        });
        backoff = 200;
        const r = await tail.done;
        if (await gone()) return onGone();
        // tail ended while QEMU runs (killed by someone, or a tail without -F/--pid): a few times, then only watch the PID
        if (r.code !== 0 && ++failures >= 3) {
          serial.end(
            `cannot follow the serial console on ${host} (tail: ${stderr.trim() || `exit ${r.code}`}); GNU coreutils tail is needed`,
          );
          return await pollExit();
        }
        await sleep(500);
      } catch (e) {
        if (/closed by migbench/.test(errorMessage(e))) {
          following = false;
          serial.end(`SSH connection to ${host} closed by migbench; the guest's end can no longer be observed`);
          localLog.end();
          return;
        }
        reconnects++;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  };

  /** Without a usable tail: the end of QEMU observed by polling its PID once a second. */
  const pollExit = async () => {
    while (following) {
      await sleep(1000);
      if (await gone()) return onGone();
    }
  };

  let qmp: QmpClient;
  const openQmp = async (timeoutMs: number) => {
    const stream = await conn.openUnixSocket(paths.qmp);
    return QmpClient.fromStream(stream, { label: `${o.name}@${host}`, timeoutMs });
  };
  try {
    qmp = await openQmp(startTimeoutMs);
  } catch (e) {
    following = false;
    lastSignal = 'SIGKILL';
    await signal('KILL').catch(() => undefined);
    await conn.exec(['rm', '-f', '--', paths.pidFile, paths.qmp], { timeoutMs: 10_000 }).catch(() => undefined);
    localLog.end();
    throw new Error(`QEMU for VM ${o.name} on ${host} started (PID ${pid}) but QMP did not answer: ${errorMessage(e)}`);
  }
  void follow();

  const sendSerial = async (text: string): Promise<void> => {
    if (!o.serialInput) throw new Error(`VM ${o.name} on ${host}: its console takes no input (started without serialInput)`);
    const stream = await conn.openUnixSocket(paths.serialSock);
    // QEMU also sends the console's output to a connected client: it is in the log already, so it is read and dropped.
    // QEMU closes the connection once it read the text and our end of input, i.e. once the guest's UART took it all.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(conn.error(`VM ${o.name}: the guest did not read ${Buffer.byteLength(text)} bytes from its console within 15 s`));
      }, 15_000);
      stream.on('data', () => undefined);
      stream.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(conn.error(`VM ${o.name}: writing to its console failed: ${e.message}`));
      });
      stream.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.end(text);
    });
  };

  const kill = async (graceMs = 10_000): Promise<VmExit> => {
    if (exitInfo) return exitInfo;
    lastSignal = 'SIGTERM';
    if (await signal('TERM')) {
      const first = await within(exited, graceMs);
      if (first) return first;
      lastSignal = 'SIGKILL';
      await signal('KILL');
    }
    // gone (or killed): the follower observes the end within its poll interval unless SSH is down
    const r = await within(exited, 30_000);
    if (r) return r;
    throw conn.error(`QEMU PID ${pid} of VM ${o.name} was signalled but its end was not observed within 30 s; check the connection`);
  };

  return {
    name: o.name,
    host,
    pid,
    accel: o.accel,
    get qmp() {
      return qmp;
    },
    qmpSocketPath: paths.qmp,
    serialLogPath: join(o.localDir, `${stem}.serial.log`),
    remote: { ...paths, dir: o.remoteDir },
    ...(o.boot ? { boot: o.boot } : {}),
    ...(o.startNote ? { startNote: o.startNote } : {}),
    argv,
    exited,
    hasExited: () => exitInfo !== null,
    waitForSerial: (re, timeoutMs, opts) => serial.waitFor(re, timeoutMs, opts?.since ?? 0),
    serialMark: () => serial.mark(),
    serialLines: () => serial.allLines(),
    onSerialLine: (l) => serial.onLine(l),
    serialProblems: () => serial.problemsSeen(),
    serialReconnects: () => reconnects,
    writeSerial: () => {
      throw new Error(
        `VM ${o.name} on ${host}: writing to the serial console is not supported for a remote QEMU (its console is a file there)`,
      );
    },
    sendSerial,
    reopenQmp: async () => {
      if (exitInfo) throw new Error(`VM ${o.name} on ${host}: QEMU has exited`);
      if (qmp.isOpen) await qmp.close();
      qmp = await openQmp(30_000);
      return qmp;
    },
    kill,
    quit: async (timeoutMs = 15_000) => {
      if (exitInfo) return exitInfo;
      quitSent = true;
      await qmp.execute('quit', {}, { timeoutMs }).catch(() => undefined); // the reply may race the exit
      const r = await within(exited, timeoutMs);
      return r ?? kill();
    },
  };
}

/** Where a guest goes on one server (from the inventory and the run). */
export interface RemoteGuestPlace {
  /** The bridge guests attach to (inventory `bridge`). */
  bridge: string;
  /** Run directory on the server (e.g. /run/migbench/<run id>). */
  remoteDir: string;
  /** The guest image with the server's paths (ensureImage). */
  image: StartVmOptions['image'];
}

/**
 * The driver's startGuest on a server: the tap on the bridge, then QEMU (`start`: booting, or restoring a
 * saved guest, remote-saved-guest.ts); on failure the tap is removed again. `o.runDir` is the controller directory for
 * the serial log copy; `o.image` is replaced by the server's copy.
 */
export async function startRemoteGuest(
  conn: SshConnection,
  place: RemoteGuestPlace,
  o: Omit<StartVmOptions, 'netns' | 'dieWithHarness'>,
  start: (conn: SshConnection, o: RemoteVmOptions) => Promise<RemoteVmProcess> = startRemoteVm,
): Promise<RemoteVmProcess> {
  const { runDir, ...rest } = o;
  // the tap is created while the server's directory is prepared (and a saved guest looked up): a round trip less
  const tapReady = o.tap ? createRemoteTap(conn, o.tap.ifname, place.bridge) : Promise.resolve();
  const tapMade = tapReady.then(
    () => true,
    () => false,
  );
  try {
    return await start(conn, { ...rest, image: place.image, remoteDir: place.remoteDir, localDir: runDir, tapReady });
  } catch (e) {
    // a tap that could not be created is not ours to remove (e.g. one an earlier run left); its error is the one thrown
    if (o.tap && (await tapMade)) await deleteRemoteTap(conn, o.tap.ifname);
    throw e;
  }
}
