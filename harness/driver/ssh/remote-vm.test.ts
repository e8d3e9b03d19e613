import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { isOwnRemoteDir, shScript, TAP_SCRIPT } from './remote-host.ts';
import { GONE_SCRIPT, parsePid, PREPARE_SCRIPT, remoteVmPaths, serialTailArgv, SIGNAL_SCRIPT, START_SCRIPT } from './remote-vm.ts';

/**
 * The remote side of the qemu back end is fixed shell text taking its values as
 * positional arguments; here it runs under the local sh with hostile paths.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A directory whose name a shell would love to misread. */
function hostileDir(): string {
  const base = mkdtempSync(join(tmpdir(), 'mb-g-rvm-'));
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  return join(base, `a b'$(touch pwned)\`x\`;"`);
}

const sh = (argv: string[]) => execa(argv[0], argv.slice(1), { reject: false });

/** A live process whose argv holds `marker` as one element (as QEMU's holds its pidfile path). */
function processWithArg(marker: string): { pid: number; stop: () => void } {
  const child = spawn('sh', ['-c', 'sleep 30', marker], { stdio: 'ignore' });
  const stop = () => child.kill('SIGKILL');
  cleanups.push(stop);
  return { pid: child.pid!, stop };
}

describe('remote QEMU files and commands', () => {
  it('names the files of a VM in the run directory', () => {
    expect(remoteVmPaths('/run/migbench/r1/', 'vm1.h1')).toEqual({
      qmp: '/run/migbench/r1/vm1.h1.qmp',
      pidFile: '/run/migbench/r1/vm1.h1.pid',
      serialLog: '/run/migbench/r1/vm1.h1.serial.log',
      serialSock: '/run/migbench/r1/vm1.h1.serial.sock',
    });
    expect(serialTailArgv('/d/s.log', 42, 0)).toEqual(['tail', '-c', '+1', '-F', '--pid=42', '-s', '0.1', '/d/s.log']);
    expect(serialTailArgv('/d/s.log', 42, 1000)[2]).toBe('+1001');
    expect(parsePid('12345\n')).toBe(12345);
    expect(parsePid('')).toBeNull();
    expect(parsePid('12 34')).toBeNull();
    expect(parsePid('0')).toBeNull();
  });

  it('removes only directories below a migbench directory', () => {
    expect(isOwnRemoteDir('/run/migbench/run-1')).toBe(true);
    expect(isOwnRemoteDir('/var/tmp/migbench/images')).toBe(true);
    for (const bad of ['/run/migbench', '/run/migbench/', 'run/migbench/x', '/run/x', '/run/migbench/../etc', '/', '/run/migbench/./x'])
      expect(isOwnRemoteDir(bad), bad).toBe(false);
  });

  it('prepare: creates the directory and clears stale files, whatever the path looks like', async () => {
    const d = hostileDir();
    const p = remoteVmPaths(d, 'vm1');
    const r1 = await sh(shScript(PREPARE_SCRIPT, d, p.pidFile, p.qmp, p.serialLog));
    expect(r1.exitCode, r1.stderr).toBe(0);
    expect(existsSync(d)).toBe(true);
    writeFileSync(p.serialLog, 'MB-READY vm=vm1 (from an earlier run)\n');
    writeFileSync(p.qmp, '');
    writeFileSync(p.pidFile, `${process.pid}\n`); // alive, but not a QEMU of ours: stale
    const r2 = await sh(shScript(PREPARE_SCRIPT, d, p.pidFile, p.qmp, p.serialLog));
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect([p.serialLog, p.qmp, p.pidFile].filter((f) => existsSync(f))).toEqual([]);
    expect(existsSync(join(d, '..', 'pwned'))).toBe(false);
    expect(existsSync('pwned')).toBe(false);
  });

  it('prepare: refuses when the pidfile names a live process of ours, and leaves its files', async () => {
    const d = hostileDir();
    const p = remoteVmPaths(d, 'vm1');
    await sh(shScript(PREPARE_SCRIPT, d, p.pidFile, p.qmp, p.serialLog));
    const live = processWithArg(p.pidFile);
    writeFileSync(p.pidFile, `${live.pid}\n`);
    writeFileSync(p.serialLog, 'x\n');
    const r = await sh(shScript(PREPARE_SCRIPT, d, p.pidFile, p.qmp, p.serialLog));
    expect(r.exitCode).toBe(3);
    expect(r.stdout.trim()).toBe(`LIVE ${live.pid}`);
    expect(readFileSync(p.serialLog, 'utf8')).toBe('x\n');
  });

  it('signal: only a process whose argv holds the pidfile path is signalled', async () => {
    const d = hostileDir();
    const p = remoteVmPaths(d, 'vm1');
    const ours = processWithArg(p.pidFile);
    const other = processWithArg(`${p.pidFile}.other`);
    expect((await sh(shScript(SIGNAL_SCRIPT, String(ours.pid), p.pidFile, ''))).exitCode).toBe(0);
    expect((await sh(shScript(SIGNAL_SCRIPT, String(other.pid), p.pidFile, 'KILL'))).exitCode).toBe(3);
    expect(existsSync(`/proc/${other.pid}`)).toBe(true);
    expect((await sh(shScript(SIGNAL_SCRIPT, String(ours.pid), p.pidFile, 'TERM'))).exitCode).toBe(0);
    for (let i = 0; i < 100 && (await sh(shScript(SIGNAL_SCRIPT, String(ours.pid), p.pidFile, ''))).exitCode === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await sh(shScript(SIGNAL_SCRIPT, String(ours.pid), p.pidFile, ''))).exitCode).toBe(3);
    expect((await sh(shScript(SIGNAL_SCRIPT, '999999999', p.pidFile, 'KILL'))).exitCode).toBe(3);
  });

  it('gone: exit 0 and nothing removed while our QEMU runs; once it is gone (or its PID is another process) exit 3, pidfile and socket removed', async () => {
    const d = hostileDir();
    mkdirSync(d, { recursive: true });
    const p = remoteVmPaths(d, 'vm1');
    const ours = processWithArg(p.pidFile);
    const other = processWithArg(`${p.pidFile}.other`);
    const files = () => [p.pidFile, p.qmp, p.serialLog].map((f) => existsSync(f));
    for (const f of [p.pidFile, p.qmp, p.serialLog]) writeFileSync(f, 'x');
    expect((await sh(shScript(GONE_SCRIPT, String(ours.pid), p.pidFile, p.qmp))).exitCode).toBe(0);
    expect(files()).toEqual([true, true, true]);
    expect((await sh(shScript(GONE_SCRIPT, String(other.pid), p.pidFile, p.qmp))).exitCode).toBe(3);
    expect(files()).toEqual([false, false, true]); // the serial log stays: it is read to its end after QEMU's
    for (const f of [p.pidFile, p.qmp]) writeFileSync(f, 'x');
    ours.stop();
    for (let i = 0; i < 100 && existsSync(`/proc/${ours.pid}`); i++) await new Promise((r) => setTimeout(r, 20));
    expect((await sh(shScript(GONE_SCRIPT, String(ours.pid), p.pidFile, p.qmp))).exitCode).toBe(3);
    expect(files()).toEqual([false, false, true]);
  });

  it('start: runs the program from its argv unchanged, then prints the pidfile; a failing program reports its status', async () => {
    const d = hostileDir();
    const p = remoteVmPaths(d, 'vm1');
    await sh(shScript(PREPARE_SCRIPT, d, p.pidFile, p.qmp, p.serialLog));
    // stands in for `qemu ... -daemonize -pidfile <p>`: writes the pidfile named by its last argument
    const fake = ['sh', '-c', 'for a; do last=$a; done; echo 4242 > "$last"', 'qemu', '-name', 'vm1,debug-threads=on', p.pidFile];
    const ok = await sh(shScript(START_SCRIPT, p.pidFile, ...fake));
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(parsePid(ok.stdout)).toBe(4242);
    const bad = await sh(shScript(START_SCRIPT, p.pidFile, 'sh', '-c', 'echo "qemu: could not open tap" >&2; exit 1'));
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('could not open tap');
  });

  it('tap: a failure half-way removes the tap again and keeps the failing status (fake ip on PATH)', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'mb-g-rvm-bin-'));
    cleanups.push(() => rmSync(bin, { recursive: true, force: true }));
    const log = join(bin, 'calls');
    // records each call; `link set ... master` fails like a missing bridge
    writeFileSync(
      join(bin, 'ip'),
      `#!/bin/sh\nprintf '%s|' "$@" >> '${log}'; echo >> '${log}'\ncase "$*" in *master*) echo "Cannot find device" >&2; exit 2;; esac\n`,
      { mode: 0o755 },
    );
    const r = await execa('sh', shScript(TAP_SCRIPT, 'mb-t1', 'br $(x)').slice(1), {
      reject: false,
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.exitCode).toBe(2);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'tuntap|add|dev|mb-t1|mode|tap|',
      'link|set|mb-t1|master|br $(x)|',
      'link|del|mb-t1|',
    ]);
  });
});
