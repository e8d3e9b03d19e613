import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateSyntheticRun,
  synthHotCold,
  workloadLabel,
  SYNTH_GOODPUT,
  SYNTH_DOWNTIME_LIMIT_S,
} from '../test/fixtures/synthetic-run.ts';
import { analyzeRun } from './analyze.ts';
import { loadRunDir, streamSamples } from './rundir.ts';
import { mbitToMiBps, predictDuration } from './models/duration.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-analysis-analyze-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('analyzeRun on a synthetic campaign', () => {
  it('recovers hot/cold parameters, predicts durations within the noise, counts failures', async () => {
    const dir = generateSyntheticRun(join(root, 'a'), { seed: 9, reps: 10, failRate: 0.1, noise: 0.03 });
    const a = await analyzeRun(loadRunDir(dir));
    expect(a.counts.failed).toBeGreaterThan(0);
    expect(a.counts.completed + a.counts.failed).toBe(60);
    for (const w of [16, 64]) {
      const truth = synthHotCold(w);
      const fit = a.duration.params.find((p) => p.workload === workloadLabel(w))!.fit;
      expect(fit.method).toBe('curve');
      expect(Math.abs(fit.HPs - truth.HPs) / truth.HPs).toBeLessThan(0.05);
      expect(Math.abs(fit.HPd - truth.HPd) / truth.HPd).toBeLessThan(0.05);
      expect(Math.abs(fit.CPr - truth.CPr) / truth.CPr).toBeLessThan(0.1);
    }
    // Lognormal noise of 3 %: median |error| ~ 0.67 * 3 % = 2 %.
    expect(a.duration.summary.n).toBe(a.counts.completed);
    expect(a.duration.summary.medianRelError).toBeLessThan(0.04);
    expect(a.duration.summary.p90RelError).toBeLessThan(0.08);
    expect(a.energy.pooled.fits[0].alpha).toBeCloseTo(0.512, 2);
    expect(a.variability.map((t) => t.metric)).toEqual(['total_ms', 'downtime_reported_ms', 'downtime_event_ms', 'downtime_observed_ms']);
  });

  it('flags migrations the model says cannot converge (bw <= HPr)', async () => {
    // wset 64 MiB: HPr = 48 / 9 = 5.3 MiB/s; 40 Mbit/s gives 4.6 MiB/s of goodput.
    const dir = generateSyntheticRun(join(root, 'nc'), { seed: 2, reps: 3, wsetsMiB: [64], ratesMbit: [40, 200] });
    const run = loadRunDir(dir);
    // The generator records them as failed; pretend one completed anyway.
    const failed = run.migrations.filter((m) => m.link_rate_mbit === 40);
    expect(failed.every((m) => m.status === 'failed')).toBe(true);
    failed[0].status = 'completed';
    failed[0].total_ms = 120_000;
    const a = await analyzeRun(run);
    expect(a.duration.summary.nonConvergent).toBe(1);
    expect(a.duration.rows.find((r) => r.id === failed[0].id)!.note).toMatch(/HPr/);
  });

  it('plan metrics: slowdown and completion speedup against sequential match the generating model', async () => {
    const dir = generateSyntheticRun(join(root, 'p'), { seed: 4, reps: 6, planVms: 3, wsetsMiB: [16], ratesMbit: [400], noise: 0.01 });
    const a = await analyzeRun(loadRunDir(dir));
    expect(a.plans.plans.map((p) => p.label).sort()).toEqual(['parallel', 'sequential']);
    const hc = synthHotCold(16);
    const bw = mbitToMiBps(400, SYNTH_GOODPUT);
    const cond = (b: number) => {
      const r = predictDuration(hc, { bw: b, mu: 256, D: SYNTH_DOWNTIME_LIMIT_S });
      if (!r.converges) throw new Error();
      return r.d;
    };
    const dSeq = cond(bw),
      dPar = cond(bw / 3);
    const curve = a.plans.curves[0];
    expect(curve.label).toBe('parallel');
    const medianSlow = curve.slowdown[Math.floor(curve.slowdown.length / 2)].value;
    expect(Math.abs(medianSlow - dPar / dSeq) / (dPar / dSeq)).toBeLessThan(0.05);
    const expectedSpeedup = (3 * dSeq + 1) / dPar; // sequential has 0.5 s gaps
    for (const p of curve.speedup) expect(Math.abs(p.value - expectedSpeedup) / expectedSpeedup).toBeLessThan(0.05);
    const seq = a.plans.plans.find((p) => p.label === 'sequential')!;
    expect(seq.peakPowerW).toBeGreaterThan(200); // two hosts, idle 100 W + 35 W while migrating
    expect(seq.peakPowerW).toBeLessThan(300);
    // both hosts draw 35 W above idle for the whole plan window: the plan's energy is 2 x 35 W x its completion time,
    // also for the parallel plan, whose three overlapping migrations' energies would sum to ~3x that
    for (const p of a.plans.plans) expect(Math.abs(p.energyJ! / (70 * p.completionS) - 1), p.label).toBeLessThan(0.05);
    expect(a.plans.gantt.length).toBe(6);
  });
});

describe('loadRunDir leniency and errors', () => {
  it('fills missing optional fields, skips a torn last line, reports (not throws) bad middle lines', async () => {
    const dir = join(root, 'lenient');
    generateSyntheticRun(dir, { seed: 1, reps: 1, wsetsMiB: [16], ratesMbit: [100] });
    appendFileSync(
      join(dir, 'migrations.jsonl'),
      JSON.stringify({ id: 'x', treatment: 't0001', rep: 0, vm: 'vm1', src: 'a', dst: 'b', status: 'completed' }) + '\n{"id":"torn',
    );
    const run = loadRunDir(dir);
    const x = run.migrations.find((m) => m.id === 'x')!;
    expect(x.total_ms).toBeNull();
    expect(x.energy_j).toBeNull();
    expect(x.healthy).toBeNull(); // not checked is not healthy
    expect(run.problems.map((p) => p.kind)).toEqual(['truncated']);
    appendFileSync(
      join(dir, 'samples', 'power.jsonl'),
      '{"t": "broken\n{"t":"2026-11-20T00:00:00.000Z","measurement":"power","tags":{},"fields":{"watts":1}}\n',
    );
    const again = loadRunDir(dir);
    const n = await streamSamples(again, () => {});
    expect(n).toBeGreaterThan(0);
    expect(again.problems.at(-1)).toMatchObject({ kind: 'garbage', message: expect.stringMatching(/not valid JSON/) });
    writeFileSync(join(dir, 'migrations.jsonl'), 'garbage\n{}\n');
    expect(loadRunDir(dir).problems.map((p) => `${p.line} ${p.kind}`)).toEqual(['1 garbage', '2 invalid']);
    expect(() => loadRunDir(join(root, 'none'))).toThrow(/does not exist/);
  });
});
