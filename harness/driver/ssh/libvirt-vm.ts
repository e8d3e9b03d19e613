/**
 * The `libvirt` back end of the ssh driver: a guest is a libvirt domain on a server (defined
 * from libvirt-domain.ts's XML, then started, with virsh over SSH), behind the same VmProcess
 * interface as the qemu back end's guests. Its serial console (a file there) is followed with
 * `tail -F --pid=<qemu>` like remote-vm.ts does, whose end is how the end of QEMU is observed;
 * QMP is the domain's second monitor, reached through ssh2's unix-socket forwarding. Ending a
 * guest is `virsh destroy` + `virsh undefine` of exactly its domain.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StartVmOptions, VmExit, VmProcess } from '../../hypervisor/qemu.ts';
import { QmpClient } from '../../hypervisor/qmp.ts';
import { SerialConsole } from '../../hypervisor/serial.ts';
import type { SshConnection } from '../../ssh/connection.ts';
import { UserError, errorMessage } from '../../util/errors.ts';
import { sleep } from '../../util/time.ts';
import { domainXml, assertDomainName } from './libvirt-domain.ts';
import { shScript } from './remote-host.ts';
import { serialTailArgv } from './remote-vm.ts';
import { SerialCopy } from './serial-copy.ts';
import { within } from '../../util/timers.ts';

export const LIBVIRT_URI = 'qemu:///system';

/** virsh against the server's system libvirt (the argv of one remote command). */
export function virsh(...args: string[]): string[] {
  return ['virsh', '-q', '-c', LIBVIRT_URI, ...args];
}

/** The domain's files on the server: the same paths on every server it runs on (a migration keeps its XML). */
export interface LibvirtPaths {
  dir: string;
  xml: string;
  serialLog: string;
  qmp: string;
}

export function libvirtPaths(remoteDir: string, vmName: string): LibvirtPaths {
  const d = remoteDir.replace(/\/+$/, '');
  return { dir: d, xml: `${d}/${vmName}.xml`, serialLog: `${d}/${vmName}.serial.log`, qmp: `${d}/${vmName}.qmp` };
}

/** The domain name of a VM of a testbed: unique on a server, the same on both sides of a migration. */
export function domainName(testbedId: string, vmName: string): string {
  const n = `mb-${testbedId}-${vmName}`;
  assertDomainName(n);
  return n;
}

/** A guest that is a libvirt domain on a server. */
export interface LibvirtVmProcess extends VmProcess {
  readonly host: string;
  readonly domain: string;
  readonly remote: LibvirtPaths;
  serialReconnects(): number;
}

/** Creates the directory and clears files a former guest of this name left there (an old log must not satisfy a wait). */
export const PREPARE_DIR_SCRIPT = 'mkdir -p -- "$1" && rm -f -- "$2" "$3"';
/** Writes stdin to $1. */
const WRITE_SCRIPT = 'cat > "$1"';
/** Exit 0 and prints the PID when libvirt's pidfile of domain $1 names a live process. */
const PID_SCRIPT = 'p=$(cat "/run/libvirt/qemu/$1.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"';

/** Is `virsh`'s complaint that the domain does not exist (nothing to end then)? */
export function noSuchDomain(stderr: string): boolean {
  return /failed to get domain|Domain not found|no domain with matching name/i.test(stderr);
}

/** Prepares the server's directory for a guest of this name. */
export async function prepareLibvirtDir(conn: SshConnection, p: LibvirtPaths): Promise<void> {
  await conn.run(shScript(PREPARE_DIR_SCRIPT, p.dir, p.serialLog, p.qmp), { label: `preparing ${p.dir}` });
}

/**
 * Defines and starts the domain on the server behind `conn`; resolves once its QMP answers.
 * `onDomain` is told before the definition (the run records it for teardown after a crash).
 */
export async function startLibvirtGuest(
  conn: SshConnection,
  o: Omit<StartVmOptions, 'netns' | 'dieWithHarness' | 'runDir'> & {
    domain: string;
    bridge: string;
    remoteDir: string;
    localDir: string;
    onDomain: (domain: string) => void;
  },
): Promise<LibvirtVmProcess> {
  if (o.incoming) throw new Error('the libvirt back end starts destination guests through virsh migrate, never paused by hand');
  if (o.disk) throw new UserError(`VM ${o.name}: guest disks are not supported by the libvirt back end yet; use hypervisor: qemu`);
  if (o.qemuArgs?.length) throw new UserError(`VM ${o.name}: extra QEMU arguments are not supported by the libvirt back end`);
  const p = libvirtPaths(o.remoteDir, o.name);
  if (p.qmp.length > 107)
    throw new UserError(`QMP socket path ${p.qmp} on ${conn.name} is longer than 107 bytes; use a shorter run directory`);
  const xml = domainXml({ domain: o.domain, vm: o, bridge: o.bridge, serialLog: p.serialLog, qmp: p.qmp });
  await prepareLibvirtDir(conn, p);
  await conn.run(shScript(WRITE_SCRIPT, p.xml), { stdin: xml, label: `writing ${p.xml}` });
  o.onDomain(o.domain);
  const def = await conn.exec(virsh('define', p.xml), { label: `virsh define ${p.xml}` });
  if (def.code !== 0) throw conn.error(`libvirt refused the domain of VM ${o.name}: ${(def.stderr || def.stdout).trim().slice(0, 1500)}`);
  const st = await conn.exec(virsh('start', o.domain), { label: `virsh start ${o.domain}`, timeoutMs: o.startTimeoutMs ?? 60_000 });
  if (st.code !== 0) {
    await conn.exec(virsh('undefine', o.domain), { timeoutMs: 15_000 }).catch(() => undefined);
    throw conn.error(`libvirt could not start the domain of VM ${o.name}: ${(st.stderr || st.stdout).trim().slice(0, 1500)}`);
  }
  try {
    return await attachLibvirtGuest(conn, { name: o.name, domain: o.domain, accel: o.accel, paths: p, localDir: o.localDir });
  } catch (e) {
    await endDomain(conn, o.domain).catch(() => undefined);
    throw e;
  }
}

/** `virsh destroy` (SIGTERM, then SIGKILL by libvirt) and `virsh undefine` of exactly this domain; a domain already gone is fine. */
export async function endDomain(conn: SshConnection, domain: string, graceful = false): Promise<void> {
  const d = await conn.exec(virsh('destroy', domain, ...(graceful ? ['--graceful'] : [])), { timeoutMs: 30_000 });
  if (d.code !== 0 && graceful && !noSuchDomain(d.stderr) && !/not running/i.test(d.stderr))
    await conn.exec(virsh('destroy', domain), { timeoutMs: 30_000 });
  const u = await conn.exec(virsh('undefine', domain), { timeoutMs: 30_000 });
  if (u.code !== 0 && !noSuchDomain(u.stderr)) throw conn.error(`virsh undefine ${domain} failed: ${u.stderr.trim()}`);
}

/**
 * The VmProcess of a running domain: after `virsh start`, or on the destination of a
 * migration (libvirt started it there). Follows its serial log from the start of the file.
 */
export async function attachLibvirtGuest(
  conn: SshConnection,
  o: { name: string; domain: string; accel: StartVmOptions['accel']; paths: LibvirtPaths; localDir: string; timeoutMs?: number },
): Promise<LibvirtVmProcess> {
  const host = conn.name;
  const p = o.paths;
  const pidOut = await conn.exec(shScript(PID_SCRIPT, o.domain), { label: `reading the QEMU PID of ${o.domain}` });
  const pid = Number(pidOut.stdout.trim());
  if (pidOut.code !== 0 || !Number.isInteger(pid) || pid <= 0) throw conn.error(`domain ${o.domain} has no running QEMU there`);
  const alive = async () =>
    conn.exec(['kill', '-0', String(pid)], { timeoutMs: 15_000 }).then(
      (r) => r.code === 0,
      () => true,
    );

  mkdirSync(o.localDir, { recursive: true });
  const stem = `${o.name}.${host}`;
  const localPath = join(o.localDir, `${stem}.serial.log`);
  const localLog = new SerialCopy(localPath, 'a');
  const serial = new SerialConsole(o.name);
  let exitInfo: VmExit | null = null;
  let ending: 'destroy' | null = null;
  let resolveExited!: (x: VmExit) => void;
  const exited = new Promise<VmExit>((r) => (resolveExited = r));
  let bytes = 0;
  let reconnects = 0;
  let following = true;

  const onGone = () => {
    if (exitInfo) return;
    following = false;
    exitInfo = ending ? { code: null, signal: 'SIGTERM' } : { code: null, signal: null };
    serial.end(`${ending ? 'the domain was destroyed' : 'QEMU exited'} (${o.domain} on ${host})`);
    localLog.end();
    resolveExited(exitInfo);
  };

  const follow = async () => {
    let backoff = 200;
    while (following) {
      try {
        const tail = await conn.spawn(serialTailArgv(p.serialLog, pid, bytes), {
          label: `following the serial console of ${o.domain}`,
          onStdout: (s) => {
            bytes += Buffer.byteLength(s);
            localLog.write(s);
            serial.push(s);
          },
        });
        backoff = 200;
        await tail.done;
        if (!(await alive())) return onGone();
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

  // our monitor's socket appears as QEMU starts (and on a destination, before libvirt resumes it)
  let qmp: QmpClient | null = null;
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (let last = ''; !qmp;) {
    try {
      qmp = await QmpClient.fromStream(await conn.openUnixSocket(p.qmp), { label: `${o.name}@${host}`, timeoutMs: 30_000 });
    } catch (e) {
      last = errorMessage(e);
      if (Date.now() > deadline) throw conn.error(`QMP of domain ${o.domain} (${p.qmp}) did not answer: ${last}`);
      await sleep(200);
    }
  }
  void follow();

  const end = async (graceful: boolean): Promise<VmExit> => {
    if (!exitInfo) ending = 'destroy';
    await endDomain(conn, o.domain, graceful);
    const r = await within(exited, 30_000);
    if (r) return r;
    throw conn.error(`domain ${o.domain} (QEMU ${pid}) was destroyed but its end was not observed within 30 s; check the connection`);
  };

  const q = qmp;
  return {
    name: o.name,
    host,
    domain: o.domain,
    pid,
    accel: o.accel,
    get qmp() {
      return q;
    },
    qmpSocketPath: p.qmp,
    serialLogPath: localPath,
    remote: p,
    argv: virsh('start', o.domain),
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
        `VM ${o.name} on ${host}: writing to the serial console is not supported for a libvirt domain (its console is a file)`,
      );
    },
    kill: () => end(false),
    quit: () => end(true),
  };
}
