import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TsWorker } from './ts-worker.ts';

const fixture = (f: string) => new URL(`../../test/fixtures/workers/${f}`, import.meta.url);

describe('TsWorker', () => {
  const w = new TsWorker(fixture('echo-worker.ts'), 'echo');
  afterAll(() => w.close());

  it('runs a TypeScript module and answers calls, concurrent ones each with its own result', async () => {
    await w.ready;
    expect(await w.call('echo', { a: [1, 2], m: new Map([['k', 3]]) })).toEqual({ a: [1, 2], m: new Map([['k', 3]]) });
    const [slow, fast] = await Promise.all([w.call<number>('slow', 50), w.call<number>('slow', 1)]);
    expect([slow, fast]).toEqual([50, 1]);
  });

  it("gives a job's error back as an error with its message, and goes on serving", async () => {
    await expect(w.call('fail', 'no such run directory')).rejects.toThrow('no such run directory');
    await expect(w.call('nope', 1)).rejects.toThrow("no job 'nope'");
    expect(await w.call('echo', 7)).toBe(7);
  });

  it('moves buffers both ways when asked (the sender keeps an empty one)', async () => {
    const a = await w.call<Float64Array>('squares', 4);
    expect([...a]).toEqual([0, 1, 4, 9]);
    const sent = new Float64Array([1, 2, 3]);
    expect(await w.call('sum', sent, [sent.buffer])).toBe(6);
    expect(sent.length).toBe(0);
  });

  it('fails pending and later calls, naming the worker, when it dies', async () => {
    const d = new TsWorker(fixture('echo-worker.ts'), 'doomed');
    await expect(d.call('exit', 3)).rejects.toThrow('doomed worker ended (exit code 3)');
    await expect(d.call('echo', 1)).rejects.toThrow('doomed worker ended');
  });

  it('rejects ready (and calls) when the module cannot load', async () => {
    const b = new TsWorker(fixture('broken-worker.ts'), 'broken');
    await expect(b.ready).rejects.toThrow(/broken worker failed: this module cannot load/);
    await expect(b.call('echo', 1)).rejects.toThrow(/broken worker/);
  });

  it('does not keep the process alive once idle', () => {
    const bin = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, fileURLToPath(fixture('idle-worker-main.ts'))], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe('done');
    expect(r.status).toBe(0);
  });
});
