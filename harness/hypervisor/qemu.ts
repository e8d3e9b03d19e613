/**
 * Starts one QEMU guest (optionally inside a network namespace, on an
 * existing tap), with QMP on a unix socket and the serial console both
 * logged to a file and parsed live.
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { spawnProcess, haveCommand, withPdeathsig } from '../util/exec.ts';
import { UserError } from '../util/errors.ts';
import type { GuestImage } from '../image/build.ts';
import type { GuestBoot } from '../store/schema/guest-start.ts';
import { QmpClient } from './qmp.ts';
import { SerialConsole, type SerialProblem } from './serial.ts';
import { assertQemuUsable, QEMU_BINARY, type Accel } from './version.ts';

export type { Accel } from './version.ts';

export interface TapAttachment {
  /** Existing tap device (created by the caller, in `netns` if given). */
  ifname: string;
  /** Guest MAC, e.g. 52:54:00:12:34:56. Keep it the same across a migration. */
  mac: string;
}

export interface StartVmOptions {
  /** VM name: guest hostname, QEMU -name, file names in runDir. */
  name: string;
  /** Run QEMU inside this network namespace (`ip netns exec`). */
  netns?: string;
  memoryMiB: number;
  vcpus?: number;
  image: GuestImage;
  accel: Accel;
  /** Guest address `a.b.c.d/prefix`; without it the guest skips network setup. */
  ip?: string;
  gw?: string;
  /** Workload spec for the guest, e.g. dirtyWorkloadSpec(...) = `dirty:wset=32M,...`. */
  workload?: string;
  /** Start busybox httpd on port 80 in the guest. */
  httpd?: boolean;
  /** Extra kernel command-line words. */
  cmdlineExtra?: string[];
  /** NIC on an existing tap; without it the VM has no NIC. */
  tap?: TapAttachment;
  /** Destination of a migration: start paused, waiting for migrate-incoming. */
  incoming?: 'defer';
  /** Where the QMP socket and the serial log go. */
  runDir: string;
  /** Stem for file names in runDir (default: name, plus ".in" for incoming). */
  fileStem?: string;
  /** CPU model (default: host under KVM, max under TCG). */
  cpu?: string;
  /** q35 boots slightly faster than pc under TCG here. */
  machine?: 'q35' | 'pc';
  /** Killed by the kernel when the harness dies, even by kill -9 (short-lived VMs outside any testbed: the KVM probe). */
  dieWithHarness?: boolean;
  /** Bound for QEMU to start and answer on QMP (default 60 s). */
  startTimeoutMs?: number;
  /** Extra QEMU arguments (appended). */
  qemuArgs?: string[];
  /** A virtio disk (guest /dev/vda) from this image; its format node is DISK_NODE (block migration mirrors it). */
  disk?: { path: string; format: 'raw' | 'qcow2' };
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface VmProcess {
  readonly name: string;
  readonly pid: number;
  readonly accel: Accel;
  readonly qmp: QmpClient;
  readonly qmpSocketPath: string;
  readonly serialLogPath: string;
  /** The full QEMU command (argv), for manifests and debugging. */
  readonly argv: readonly string[];
  /** How the guest came up, when the driver restored it or chose a cold boot (harness/hypervisor/saved-guest.ts). */
  readonly boot?: GuestBoot;
  /** A line for the run's log about how it started (e.g. saved guests removed from a full cache). */
  readonly startNote?: string;
  /** Resolves when this QEMU process has ended. */
  readonly exited: Promise<VmExit>;
  hasExited(): boolean;
  /** First serial line (after `since`, see serialMark) matching `re`. Rejects on timeout, exit, or an MB-ERROR line. */
  waitForSerial(re: RegExp, timeoutMs: number, opts?: { since?: number }): Promise<string>;
  serialMark(): number;
  serialLines(): readonly string[];
  onSerialLine(listener: (line: string) => void): () => void;
  /** Kernel oops/panic/BUG/WARNING lines seen on the console. */
  serialProblems(): readonly SerialProblem[];
  /** Writes to the guest console (a busybox shell runs there). */
  writeSerial(text: string): void;
  /** SIGTERM to exactly this PID, SIGKILL after `graceMs`. */
  kill(graceMs?: number): Promise<VmExit>;
  /** QMP `quit`, then kill() if it has not exited within `timeoutMs`. */
  quit(timeoutMs?: number): Promise<VmExit>;
}

const MAX_UNIX_PATH = 107;

/** Node name of a guest's disk (its format layer): what block migration mirrors and exports. */
export const DISK_NODE = 'mb-disk0';

/** QEMU option values use ',' as separator; a literal comma is written ',,'. */
function optEscape(s: string): string {
  return s.replace(/,/g, ',,');
}

function assertWord(what: string, v: string): void {
  if (/\s/.test(v) || v === '') throw new UserError(`VM ${what} must be a non-empty value without spaces (got "${v}")`);
}

/** Kernel command line for our /init (see workloads/guest/init). */
export function guestCmdline(o: Pick<StartVmOptions, 'name' | 'ip' | 'gw' | 'workload' | 'httpd' | 'cmdlineExtra'>): string {
  assertWord('name', o.name);
  const words = ['console=ttyS0', 'loglevel=5', 'panic=-1', `mb.vm=${o.name}`];
  if (o.ip) {
    assertWord('ip', o.ip);
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(o.ip)) throw new UserError(`VM ${o.name}: ip must look like 10.0.0.2/24 (got "${o.ip}")`);
    words.push(`mb.ip=${o.ip}`);
  }
  if (o.gw) {
    assertWord('gw', o.gw);
    words.push(`mb.gw=${o.gw}`);
  }
  if (o.httpd) words.push('mb.httpd=1');
  if (o.workload) {
    assertWord('workload', o.workload);
    words.push(`mb.workload=${o.workload}`);
  }
  for (const w of o.cmdlineExtra ?? []) {
    assertWord('cmdline word', w);
    words.push(w);
  }
  return words.join(' ');
}

function serialChardev(p: { serialLog: string; serial?: 'stdio' | 'file' | 'socket'; serialSocket?: string }): string {
  const log = optEscape(p.serialLog);
  if (p.serial === 'file') return `file,id=ser0,path=${log}`;
  if (p.serial === 'socket') {
    if (!p.serialSocket) throw new Error('serial: socket needs a serialSocket path');
    return `socket,id=ser0,path=${optEscape(p.serialSocket)},server=on,wait=off,logfile=${log}`;
  }
  return `stdio,id=ser0,signal=off,logfile=${log}`;
}

/**
 * QEMU's argv (without the binary) for these options. The serial console goes to
 * stdio (and the log file) by default; `serial: 'file'` writes it only to the log
 * file, for a daemonized QEMU on a remote server whose log is followed over SSH;
 * `serial: 'socket'` logs it the same way and also listens on `serialSocket` for
 * input (a restored remote guest reads its configuration there). With no client
 * connected, QEMU's socket chardev fails each write and logs the whole buffer
 * (qemu_chr_write_buffer), so the log stays complete.
 */
export function qemuArgs(
  o: StartVmOptions,
  paths: { qmp: string; serialLog: string; serial?: 'stdio' | 'file' | 'socket'; serialSocket?: string },
): string[] {
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 32)
    throw new UserError(`VM ${o.name}: memory must be an integer >= 32 MiB (got ${o.memoryMiB})`);
  const vcpus = o.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1) throw new UserError(`VM ${o.name}: vcpus must be a positive integer (got ${vcpus})`);
  const args = [
    '-name',
    `${optEscape(o.name)},debug-threads=on`,
    '-nodefaults',
    '-no-user-config',
    '-machine',
    o.machine ?? 'q35',
    '-accel',
    o.accel,
    '-cpu',
    o.cpu ?? (o.accel === 'kvm' ? 'host' : 'max'),
    '-m',
    String(o.memoryMiB),
    '-smp',
    String(vcpus),
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    o.image.kernel,
    '-initrd',
    o.image.initrd,
    '-append',
    guestCmdline(o),
    // stdio so we parse it live; logfile so it survives us
    '-chardev',
    serialChardev(paths),
    '-serial',
    'chardev:ser0',
    '-qmp',
    `unix:${optEscape(paths.qmp)},server=on,wait=off`,
  ];
  if (o.tap) {
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.tap.mac))
      throw new UserError(`VM ${o.name}: tap mac "${o.tap.mac}" is not a MAC address like 52:54:00:12:34:56`);
    args.push(
      '-netdev',
      `tap,id=net0,ifname=${optEscape(o.tap.ifname)},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=net0,mac=${o.tap.mac}`,
    );
  }
  if (o.disk) {
    args.push(
      '-blockdev',
      `driver=file,node-name=${DISK_NODE}-file,filename=${optEscape(o.disk.path)}`,
      '-blockdev',
      `driver=${o.disk.format},node-name=${DISK_NODE},file=${DISK_NODE}-file`,
      '-device',
      `virtio-blk-pci,drive=${DISK_NODE},id=mb-vd0`,
    );
  }
  if (o.incoming) args.push('-incoming', o.incoming);
  args.push(...(o.qemuArgs ?? []));
  return args;
}

/** True when something answers on the unix socket (a live QEMU). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

let qemuChecked: Promise<boolean> | undefined;

/** Starts QEMU and returns once its QMP socket answers (an incoming VM is paused then). */
/** Program and arguments that start QEMU for `o` (in its namespace; under setpriv when it must die with us). */
export function qemuCommand(o: Pick<StartVmOptions, 'netns' | 'dieWithHarness'>, args: string[]): [string, string[]] {
  const [cmd, argv]: [string, string[]] = o.netns ? ['ip', ['netns', 'exec', o.netns, QEMU_BINARY, ...args]] : [QEMU_BINARY, args];
  return o.dieWithHarness ? withPdeathsig(cmd, argv) : [cmd, argv];
}

export async function startVm(o: StartVmOptions): Promise<VmProcess> {
  qemuChecked ??= haveCommand(QEMU_BINARY);
  if (!(await qemuChecked)) {
    qemuChecked = undefined;
    throw new UserError(
      `required program '${QEMU_BINARY}' was not found on PATH; install it with: apt-get -t bookworm-backports install qemu-system-x86`,
    );
  }
  await assertQemuUsable(o.accel);

  mkdirSync(o.runDir, { recursive: true });
  const stem = o.fileStem ?? (o.incoming ? `${o.name}.in` : o.name);
  const qmpPath = join(o.runDir, `${stem}.qmp`);
  const serialLog = join(o.runDir, `${stem}.serial.log`);
  if (qmpPath.length > MAX_UNIX_PATH) {
    throw new UserError(
      `QMP socket path ${qmpPath} is longer than ${MAX_UNIX_PATH} bytes (unix socket limit); use a shorter run directory`,
    );
  }
  if (existsSync(qmpPath)) {
    if (await socketAnswers(qmpPath))
      throw new UserError(`another QEMU already listens on ${qmpPath}; use a different VM name or run directory`);
    unlinkSync(qmpPath); // stale, from a QEMU that was killed
  }

  const args = qemuArgs(o, { qmp: qmpPath, serialLog });
  const [cmd, argv] = qemuCommand(o, args);
  const child: ResultPromise = spawnProcess(cmd, argv, {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    encoding: 'utf8',
    cleanup: true,
  });
  (child as unknown as Promise<unknown>).catch(() => {}); // exit is observed via 'exit' below
  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`could not start ${cmd} for VM ${o.name}`);
  }

  const serial = new SerialConsole(o.name);
  let stderrTail = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => serial.push(d));
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderrTail = (stderrTail + d).slice(-4000);
  });
  child.stdin?.on('error', () => {}); // EPIPE after QEMU exits

  let exitInfo: VmExit | null = null;
  const exitAbort = new AbortController();
  const exited = new Promise<VmExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      const why = signal ? `QEMU was killed by ${signal}` : `QEMU exited with code ${code}`;
      exitAbort.abort(`${why}${stderrTail.trim() ? `: ${stderrTail.trim()}` : ''}`);
      // let stdout drain into the console before failing waiters
      setImmediate(() => serial.end(why));
      if (existsSync(qmpPath)) {
        try {
          unlinkSync(qmpPath);
        } catch {
          /* already gone */
        }
      }
      resolve(exitInfo);
    });
  });

  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(qmpPath, { timeoutMs: o.startTimeoutMs ?? 60_000, label: o.name, signal: exitAbort.signal });
  } catch (e) {
    if (!exitInfo) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
    }
    const detail = stderrTail.trim();
    const cause = (e as Error).message;
    const msg = `QEMU for VM ${o.name} did not start: ${cause}${detail && !cause.includes(detail) ? `; QEMU said: ${detail}` : ''}`;
    // QEMU's own complaint about the tap or the network namespace is fixable by the user
    if (/could not (open|configure)|Cannot open network namespace|Cannot find device|Permission denied/i.test(detail)) {
      throw new UserError(msg);
    }
    throw new Error(msg);
  }

  const hasExited = () => exitInfo !== null;
  const kill = async (graceMs = 10_000): Promise<VmExit> => {
    if (exitInfo) return exitInfo;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => {
      if (!exitInfo)
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
    }, graceMs);
    const r = await exited;
    clearTimeout(t);
    return r;
  };

  return {
    name: o.name,
    pid,
    accel: o.accel,
    qmp,
    qmpSocketPath: qmpPath,
    serialLogPath: serialLog,
    argv: [cmd, ...argv],
    exited,
    hasExited,
    waitForSerial: (re, timeoutMs, opts) => serial.waitFor(re, timeoutMs, opts?.since ?? 0),
    serialMark: () => serial.mark(),
    serialLines: () => serial.allLines(),
    onSerialLine: (l) => serial.onLine(l),
    serialProblems: () => serial.problemsSeen(),
    writeSerial: (text) => {
      if (!exitInfo) child.stdin?.write(text);
    },
    kill,
    quit: async (timeoutMs = 15_000) => {
      if (exitInfo) return exitInfo;
      await qmp.execute('quit', {}, { timeoutMs }).catch(() => {}); // the reply may race the exit
      const t = setTimeout(() => void kill(), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}
