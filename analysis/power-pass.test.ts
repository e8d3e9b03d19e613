/**
 * The sample pass of analyzeRun gives the same result on this thread and in
 * its worker thread (power-pass.ts), and analyzeRun the same analysis and
 * the same problems, in the same order, in either mode.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { analyzeRun } from './analyze.ts';
import { planPowerPoints, powerPass, startPowerPassWorker, type PowerPassInput } from './power-pass.ts';
import { loadRunDir } from './rundir.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-power-pass-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Odd but valid lines (general parser, an own __proto__ tag, -0) and bad ones (problems), then a torn last line. */
const POWER_LINES = [
  '{"t":"2026-11-20T00:00:01.250Z","measurement":"power","tags":{"host":"r1\\u002dh1","treatment":"t0001"},"fields":{"watts":1.5e2}}',
  '{"t":"2026-11-20T00:00:01.500Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001","__proto__":"x"},"fields":{"watts":-0.0}}',
  '{ "t": "2026-11-20T00:00:01.750Z", "measurement": "power", "tags": {"host": "r1-h2", "treatment": "t0001"}, "fields": {"watts": 99.5} }',
  '{"t":"2026-11-20T00:00:02.100Z","measurement":"power","tags":{"host":"r1-h2","treatment":"t0002"},"fields":{"watts":"+7"}}',
  '{"t":"not a time","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":3}}',
  '{"t":"2026-11-20T00:00:02.400Z","measurement":"power","tags":{"host":5},"fields":{"watts":3}}',
  'null',
  '[1,2]',
  '{"t":"2026-11-20T00:00:02.800Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":12.25}',
];
const DIRTY_LINES = [
  '{"t":"2026-11-20T00:00:01.000Z","measurement":"dirty_trace","tags":{"workload":"odd"},"fields":{"window_s":1e0,"dirtied_mib":2}}',
  '{"t":"2026-11-20T00:00:01.000Z","measurement":"dirty_trace","tags":{"workload":"odd"},"fields":{"window_s":"x"}}',
  // bad lines are found only when they name the measurement read (streamSampleLines skips others unparsed)
  '{"measurement":"dirty_trace","t":5}',
  '{"t":"2026-11-20T00:00:01.000Z","measurement":"dirty_trace","tags":{},"fields":{"window_s":1}',
];

/** A small campaign with plans (plan power kept), progress samples, and bad lines in three sample files. */
function campaign(name: string): string {
  const dir = generateSyntheticRun(join(root, name), {
    seed: 3,
    reps: 3,
    vmSizesMiB: [256],
    wsetsMiB: [16, 64],
    ratesMbit: [100, 400],
    planVms: 3,
    failRate: 0.05,
    powerSamples: 6_000,
    progress: true,
  });
  appendFileSync(join(dir, 'samples', 'power.jsonl'), POWER_LINES.join('\n') + '\n{"t":"2026-11-20T00:00:03');
  appendFileSync(join(dir, 'samples', 'dirty_trace.jsonl'), DIRTY_LINES.join('\n') + '\n');
  // found by analyzeRun's other pass (calibrationRunOf), on the main thread
  appendFileSync(
    join(dir, 'samples', 'migration_progress.jsonl'),
    '{"measurement":"migration_progress"}\n{"measurement":"migration_progress",\n',
  );
  return dir;
}

/** JSON with Maps, typed arrays, -0 and non-finite numbers kept distinguishable. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x instanceof Map
      ? { __map: [...x] }
      : x instanceof Float64Array
        ? { __f64: [...x].map((n) => (Object.is(n, -0) ? 'num:-0' : n)) }
        : typeof x === 'number' && (!Number.isFinite(x) || Object.is(x, -0))
          ? `num:${Object.is(x, -0) ? '-0' : x}`
          : x,
  );
}

describe('powerPass', () => {
  it('gives the same result inline and in its worker', async () => {
    const dir = campaign('pass');
    const run = loadRunDir(dir);
    // a window and a timeline filter taking every reading, so the odd lines are in the points and the tap
    const input: PowerPassInput = {
      sampleFiles: run.sampleFiles,
      window: { start: -Infinity, end: Infinity },
      planPower: true,
      tap: { src: 'r1-h1', dst: 'r1-h2', treatment: 't0001', span: { fromMs: -Infinity, toMs: Infinity } },
    };
    const inline = await powerPass(input);
    const w = startPowerPassWorker();
    try {
      await w.ready;
      const worker = await w.run(input);
      expect(worker).toStrictEqual(inline);
      expect(canonical(worker)).toBe(canonical(inline));
    } finally {
      await w.close();
    }
    // every part is exercised
    expect(inline.curves.size).toBeGreaterThan(1);
    expect(inline.peak.size).toBeGreaterThan(1);
    expect(inline.samples).toBeGreaterThan(6_000);
    // all but the reading with no valid time
    expect(inline.points.length).toBe(inline.samples - 1);
    expect([...inline.planPower!.keys()]).toEqual(['r1-h1', 'r1-h2']);
    const proto = inline.tapPower!.find((s) => Object.hasOwn(s.tags, '__proto__'));
    expect(proto?.fields.watts).toBe(-0);
    expect(inline.problems.map((p) => [relative(dir, p.file), p.line !== null, p.kind])).toEqual([
      ['samples/dirty_trace.jsonl', true, 'invalid'],
      ['samples/dirty_trace.jsonl', true, 'garbage'],
      ['samples/power.jsonl', true, 'invalid'],
      ['samples/power.jsonl', true, 'garbage'],
      ['samples/power.jsonl', true, 'truncated'],
    ]);
    // the plan power as planEnergy reads it
    const pts = planPowerPoints(inline.planPower)!;
    const h1 = inline.planPower!.get('r1-h1')!;
    expect(pts.get('r1-h1')!.length).toBe(h1.tMs.length);
    expect(pts.get('r1-h1')![5]).toStrictEqual({ tMs: h1.tMs[5], watts: h1.watts[5] });
  });
});

describe('analyzeRun with the pass in a worker', () => {
  const analyse = async (dir: string, opts: Parameters<typeof analyzeRun>[1]) => {
    const run = loadRunDir(dir);
    const a = await analyzeRun(run, opts);
    return canonical({ a, problems: run.problems.map((p) => ({ ...p, file: relative(dir, p.file) })) });
  };

  it('gives the same analysis and problems (in their order) as inline', async () => {
    const dir = campaign('analyze');
    const inline = await analyse(dir, { powerPass: 'inline' });
    // the pass's problems first, then those of the other pass (calibrationRunOf), which runs alongside the worker's
    const files = (JSON.parse(inline) as { problems: { file: string }[] }).problems.map((p) => p.file);
    expect(files).toEqual([
      'samples/dirty_trace.jsonl',
      'samples/dirty_trace.jsonl',
      'samples/power.jsonl',
      'samples/power.jsonl',
      'samples/power.jsonl',
      'samples/migration_progress.jsonl',
      'samples/migration_progress.jsonl',
    ]);
    expect(await analyse(dir, { powerPass: 'worker' })).toBe(inline);
    // a worker handed in is used and left open
    const w = startPowerPassWorker();
    try {
      expect(await analyse(dir, { powerWorker: w })).toBe(inline);
      expect(await analyse(dir, { powerWorker: w, powerPass: 'worker' })).toBe(inline);
      await expect(w.run({ sampleFiles: [], window: null, planPower: false, tap: null })).resolves.toMatchObject({ samples: 0 });
    } finally {
      await w.close();
    }
    // 'auto' without a worker runs inline
    expect(await analyse(dir, {})).toBe(inline);
  });

  it("fails clearly in 'worker' mode when the worker is dead, and goes on inline in 'auto'", async () => {
    const dir = campaign('dead');
    const inline = await analyse(dir, { powerPass: 'inline' });
    const w = startPowerPassWorker();
    await w.close();
    await expect(analyse(dir, { powerWorker: w, powerPass: 'worker' })).rejects.toThrow(
      /pass over the power samples failed in its worker thread: power pass worker was closed/,
    );
    const warnings: string[] = [];
    const onWarning = (e: Error) => warnings.push(e.message);
    process.on('warning', onWarning);
    try {
      expect(await analyse(dir, { powerWorker: w })).toBe(inline);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.join('\n')).toMatch(/power-pass worker failed/);
  });
});
