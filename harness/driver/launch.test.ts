import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { isProcessAlive, ownProcess } from '../util/procs.ts';
import { localLauncher } from './launch.ts';

describe('local launcher (the controller itself, no namespace)', () => {
  it('streams stdout/stderr, feeds stdin until endInput, reports the exit', async () => {
    const l = localLauncher(null);
    expect(l.where).toBe('the controller');
    const p = await l.spawn(['sh', '-c', 'echo out; echo err >&2; cat; exit 3'], { tag: 't', stdin: true });
    const lines: string[] = [];
    createInterface({ input: p.stdout }).on('line', (x) => lines.push(x));
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.endInput();
    expect(await p.done).toEqual({ code: 3, signal: null });
    expect(lines).toEqual(['out']);
    expect(err).toBe('err\n');
  });

  it('signals (SIGINT) and stops (SIGTERM, then SIGKILL) by PID', async () => {
    const l = localLauncher(null);
    const a = await l.spawn(['sh', '-c', 'trap "echo got-int; exit 0" INT; while :; do sleep 0.05; done'], { tag: 'a' });
    let out = '';
    a.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 200));
    await a.signal('SIGINT');
    expect((await a.done).code).toBe(0);
    expect(out).toBe('got-int\n');
    const b = await l.spawn(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], { tag: 'b' });
    const owned = ownProcess(b.pid!, 'b');
    await new Promise((r) => b.stdout.once('data', r)); // the TERM trap is set
    await b.stop(300);
    expect(isProcessAlive(owned)).toBe(false);
    expect((await b.done).signal).toBe('SIGKILL');
  });

  it('reports a program that cannot start as an exit with an error, not a throw', async () => {
    const p = await localLauncher(null).spawn(['/nonexistent/prog'], { tag: 'x' });
    const r = await p.done;
    expect(r.code).toBeNull();
    expect(r.error).toMatch(/ENOENT/);
  });

  it('gives the local harness programs', async () => {
    const l = localLauncher('mb-x-client');
    expect(l.where).toBe('namespace mb-x-client');
    expect((await l.program('http-agent')).slice(1, 3)).toEqual(['--import', 'tsx']);
    expect((await l.program('mb-probe'))[0]).toMatch(/mb-probe-[0-9a-f]+$/);
  });
});
