import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { qemuCommand } from '../hypervisor/qemu.ts';
import { describe, expect, it } from 'vitest';
import { isProcessAlive, ownProcess } from './procs.ts';
import { safeInterval } from './timers.ts';

const SCRIPT = fileURLToPath(new URL('../../test/support/crash-harness.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Starts the stand-in harness in its own process group, as a shell starts a foreground job. */
function harness(mode: string, kind = 'spawn'): ResultPromise<{ reject: false; detached: true; all: true }> {
  return execa(process.execPath, ['--import', 'tsx', SCRIPT, mode, kind], { reject: false, detached: true, all: true, cwd: ROOT }) as never;
}

async function childPid(h: ReturnType<typeof harness>): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /child (\d+)/.exec(out);
      if (m) {
        h.all!.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    h.all!.on('data', onData);
    setTimeout(() => reject(new Error(`no child pid after 20 s: ${out}`)), 20_000);
  });
}

const alive = (pid: number) => isProcessAlive(ownProcess(pid, 't'));

describe('children in their own process group, ended by the harness', { timeout: 30_000 }, () => {
  it.each(['spawn', 'execa'])('a terminal Ctrl-C (SIGINT to the foreground group) reaches only the harness (%s)', async (kind) => {
    const h = harness('sigint', kind);
    const pid = await childPid(h);
    const child = ownProcess(pid, 'sleep');
    process.kill(-h.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
    const r = await h;
    expect(r.exitCode, r.all).toBe(130);
    expect(r.all).toContain('cleanup: child alive=true'); // it survived the signal and was ended in order
    expect(r.all).toContain('cleanup: done');
    expect(r.all).toContain('interrupted by SIGINT');
    expect(isProcessAlive(child)).toBe(false);
  });

  it('a child the harness did not end dies when the harness exits', async () => {
    const h = harness('exit');
    const pid = await childPid(h);
    const child = ownProcess(pid, 'sleep');
    expect((await h).exitCode).toBe(0);
    for (let i = 0; i < 50 && isProcessAlive(child); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });

  it.each([
    ['throw', /internal error \(uncaught exception\): ENOSPC/],
    ['reject', /internal error \(unhandled promise rejection\): EIO/],
  ])('%s: the registered cleanups run once, then exit 1 with a clear message', async (mode, msg) => {
    const h = harness(mode);
    const pid = await childPid(h);
    const r = await h;
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(msg);
    expect(r.all.match(/cleanup: child alive=true/g)?.length).toBe(1);
    expect(r.all).toMatch(/cleanup done after the internal error above; exiting with code 1/);
    expect(alive(pid)).toBe(false);
  });

  it('with nothing registered (analysis commands), SIGINT ends the process at once', async () => {
    const h = harness('idle');
    const pid = await childPid(h);
    const t0 = Date.now();
    h.kill('SIGINT');
    const r = await h;
    expect(r.exitCode).toBe(130);
    expect(Date.now() - t0).toBeLessThan(3000);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r2) => setTimeout(r2, 20));
    expect(alive(pid)).toBe(false);
  });
});

describe('a child that must die with the harness (the KVM probe QEMU)', { timeout: 30_000 }, () => {
  it('is killed by the kernel when the harness is killed with -9', async () => {
    const h = harness('idle', 'pdeathsig');
    const pid = await childPid(h);
    await new Promise((r) => setTimeout(r, 100)); // setpriv has exec'd sleep
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe('sleep');
    process.kill(h.pid!, 'SIGKILL'); // no exit hook runs: only PDEATHSIG can end the child
    await h;
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });
  it('the KVM probe starts QEMU under setpriv --pdeathsig; testbed guests do not', () => {
    expect(qemuCommand({ dieWithHarness: true }, ['-m', '128'])).toEqual([
      'setpriv',
      ['--pdeathsig', 'KILL', 'qemu-system-x86_64', '-m', '128'],
    ]);
    expect(qemuCommand({ netns: 'mb-x-h1' }, ['-m', '128'])).toEqual([
      'ip',
      ['netns', 'exec', 'mb-x-h1', 'qemu-system-x86_64', '-m', '128'],
    ]);
  });
});

describe('safeInterval', () => {
  it('hands a throwing callback to onError and keeps ticking', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const t = safeInterval(
      () => {
        n++;
        if (n <= 2) throw new Error('ENOSPC');
      },
      5,
      (e) => errors.push(e),
    );
    await new Promise((r) => setTimeout(r, 60));
    clearInterval(t);
    expect(errors.length).toBe(2);
    expect(n).toBeGreaterThan(2);
  });
});
