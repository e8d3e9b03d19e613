import { describe, expect, it } from 'vitest';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import { excessEnergy, type PowerPoint } from '../../harness/power/energy.ts';
import type { Sample } from '../../harness/store/schema/index.ts';
import { ENERGY_MIN_COVERAGE } from '../analyze.ts';
import { planEnergies, planEnergy, planWindows } from '../plan-energy.ts';
import { evaluateMaintenancePlans, MAINTENANCE_SPECS } from './maintenance-plans.ts';
import { mig, run, study } from './fixture.test-helpers.ts';
import type { StudyData } from './common.ts';
import type { Migration } from '../rundir.ts';

/** 4 VMs per repetition; `starts`/`durs` in s from the repetition's start. */
function plan(kind: string, k: number | null, reps: { starts: number[]; durs: number[] }[], baseMs = 0): Migration[] {
  return reps.flatMap((r, rep) =>
    r.durs.map((d, i) => {
      const t0 = baseMs + 1_000_000 * (rep + 1) + r.starts[i] * 1000;
      return mig({
        treatment: kind,
        rep,
        vm: `vm${i + 1}`,
        total_ms: d * 1000,
        plan: { kind, k, action_id: `a${i}`, start_ms: t0, end_ms: t0 + d * 1000 },
      });
    }),
  );
}

const seqRep = (durs: number[]) => ({ starts: durs.map((_, i) => durs.slice(0, i).reduce((a, b) => a + b, 0)), durs });
const byId = (fs: ReturnType<typeof evaluateMaintenancePlans>, id: string) => fs.find((f) => f.id === id)!;

describe('maintenance-plans evaluator', () => {
  const ms = [
    ...plan('sequential', null, [seqRep([10, 11, 10, 9]), seqRep([10, 10, 11, 10])]),
    ...plan('parallel', null, [
      { starts: [0, 0, 0, 0], durs: [20, 25, 18, 22] },
      { starts: [0, 0, 0, 0], durs: [21, 24, 19, 23] },
    ]),
    ...plan('per_server', 1, [
      { starts: [0, 11, 0, 11], durs: [11, 11, 11, 11] },
      { starts: [0, 11, 0, 11], durs: [11, 11.5, 11, 11] },
    ]),
  ];
  const treatmentTotals = [
    { treatment: 'sequential', t_start: '', t_end: '', migrations: 8, completed: 8, energy_j: 100, peak_w: 200, hosts: {} },
    { treatment: 'parallel', t_start: '', t_end: '', migrations: 8, completed: 8, energy_j: 90, peak_w: 260, hosts: {} },
  ];
  const r = run(MAINTENANCE_SPECS.plans, ms);
  r.treatmentTotals = treatmentTotals;

  it('Kherbache-like data: parallel longer and less stable, faster to complete; the hybrid best on completion', () => {
    const fs = evaluateMaintenancePlans(study({ name: MAINTENANCE_SPECS.plans, run: r }));
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    expect(byId(fs, 'parallel-longer').verdict).toBe('holds');
    expect(byId(fs, 'parallel-unstable').verdict).toBe('holds');
    expect(byId(fs, 'parallel-completion').verdict).toBe('holds');
    expect(byId(fs, 'hybrid-completion').verdict).toBe('holds');
    expect(byId(fs, 'hybrid-durations').verdict).toBe('holds');
    expect(byId(fs, 'peak-power').verdict).toBe('holds');
    expect(byId(fs, 'interlink-probe').verdict).toBe('not run');
    expect(byId(fs, 'parallel-longer').numbers.factor).toBeCloseTo(21.5 / 10.125);
  });

  it('an uncongested interlink: parallel as fast as sequential -> does not hold', () => {
    const flat = [
      ...plan('sequential', null, [seqRep([10, 11, 10, 9]), seqRep([10, 10, 11, 10])]),
      ...plan('parallel', null, [
        { starts: [0, 0, 0, 0], durs: [10, 11, 10, 9] },
        { starts: [0, 0, 0, 0], durs: [10, 10, 11, 10] },
      ]),
    ];
    const fs = evaluateMaintenancePlans(study({ name: MAINTENANCE_SPECS.plans, run: run(MAINTENANCE_SPECS.plans, flat) }));
    expect(byId(fs, 'parallel-longer').verdict).toBe('does not hold');
    expect(byId(fs, 'hybrid-completion').verdict).toBe('not run');
    expect(byId(fs, 'peak-power').reason).toMatch(/no power/);
  });

  it('one repetition: completion decided on point estimates, said in the reason', () => {
    const one = [
      ...plan('sequential', null, [seqRep([10, 11, 10, 9])]),
      ...plan('parallel', null, [{ starts: [0, 0, 0, 0], durs: [20, 25, 18, 22] }]),
    ];
    const fs = evaluateMaintenancePlans(study({ name: MAINTENANCE_SPECS.plans, run: run(MAINTENANCE_SPECS.plans, one) }));
    expect(byId(fs, 'parallel-completion').verdict).toBe('holds');
    expect(byId(fs, 'parallel-completion').reason).toMatch(/point estimates/);
  });

  describe('plan energy: power above idle integrated over the plan window', () => {
    const steady = (w: number, fromS: number, toS: number): PowerPoint[] =>
      Array.from({ length: toS - fromS + 1 }, (_, i) => ({ tMs: (fromS + i) * 1000, watts: w }));

    it('two overlapping migrations from one host: counted once, where the per-migration sum counts the source twice', () => {
      // A -> B and A -> C over the same 10 s; above idle: A 50 W, B 30 W, C 20 W
      const power = new Map([
        ['A', steady(150, -2, 12)],
        ['B', steady(130, -2, 12)],
        ['C', steady(120, -2, 12)],
      ]);
      const idle = { A: 100, B: 100, C: 100 };
      const e = planEnergy(
        { treatment: 'par', rep: 0, startMs: 0, endMs: 10_000, hosts: ['A', 'B', 'C'] },
        power,
        idle,
        ENERGY_MIN_COVERAGE,
      );
      expect(e.joules).toBeCloseTo((50 + 30 + 20) * 10, 6);
      expect(e.coverage).toBe(1);
      const perMigration = (src: string, dst: string) =>
        excessEnergy(power.get(src)!, 100, 0, 10_000).joules + excessEnergy(power.get(dst)!, 100, 0, 10_000).joules;
      expect(perMigration('A', 'B') + perMigration('A', 'C')).toBeCloseTo(1500, 6); // the old figure: A's 500 J twice
    });

    it('readings missing over the window, or no idle power: null with the reason, never a number', () => {
      const w = { treatment: 't', rep: 0, startMs: 0, endMs: 10_000, hosts: ['A', 'B'] };
      const gappy = planEnergy(
        w,
        new Map([
          ['A', steady(150, 0, 10)],
          ['B', steady(130, 0, 3)],
        ]),
        { A: 100, B: 100 },
        ENERGY_MIN_COVERAGE,
      );
      expect(gappy.joules).toBeNull();
      expect(gappy.reason).toMatch(/cover 30 %/);
      const noIdle = planEnergy(
        w,
        new Map([
          ['A', steady(150, 0, 10)],
          ['B', steady(130, 0, 10)],
        ]),
        { A: 100 },
        ENERGY_MIN_COVERAGE,
      );
      expect(noIdle.joules).toBeNull();
      expect(noIdle.reason).toMatch(/idle power of host B/);
    });

    it('windows: plans.jsonl start..end (latest attempt) where recorded, else the span of the migrations', () => {
      const ms = plan('parallel', null, [
        { starts: [0, 0], durs: [20, 25] },
        { starts: [0, 2], durs: [20, 25] },
      ]);
      const line = (attempt: number, start: number, end: number) => ({
        experiment: '',
        treatment: 'parallel',
        rep: 0,
        attempt,
        kind: 'parallel',
        k: null,
        start,
        end,
        completion_ms: end - start,
        ok: true,
        actions: [],
      });
      const ws = planWindows({ migrations: ms, plans: [line(2, 1_000_000, 1_030_000), line(1, 5, 6)] });
      expect(ws.find((w) => w.rep === 0)).toMatchObject({ startMs: 1_000_000, endMs: 1_030_000, hosts: ['r1-h1', 'r1-h2'] });
      expect(ws.find((w) => w.rep === 1)).toMatchObject({ startMs: 2_000_000, endMs: 2_027_000 });
    });

    /** Hosts at idle + `baseW` (their guests) + 10 W per migration touching them, 1 Hz readings over every window. */
    function powerSamples(ms: Migration[], baseW: number): Sample[] {
      const ts = ms.flatMap((m) => [m.plan!.start_ms!, m.plan!.end_ms!]);
      const from = Math.floor(Math.min(...ts) / 1000) - 2;
      const to = Math.ceil(Math.max(...ts) / 1000) + 2;
      const out: Sample[] = [];
      for (let t = from; t <= to; t++)
        for (const host of ['r1-h1', 'r1-h2']) {
          const n = ms.filter(
            (m) => (m.src === host || m.dst === host) && m.plan!.start_ms! <= t * 1000 && t * 1000 < m.plan!.end_ms!,
          ).length;
          // plans far apart in time: between them the hosts idle
          const inPlan = ms.some((m) => Math.abs(m.plan!.start_ms! - t * 1000) < 100_000);
          out.push({
            t: new Date(t * 1000).toISOString(),
            measurement: 'power',
            tags: { host },
            fields: { watts: 100 + (inPlan ? baseW : 0) + 10 * n },
          });
        }
      return out;
    }
    const ms = [
      ...plan('sequential', null, [seqRep([10, 11, 10, 9]), seqRep([10, 10, 11, 10])]),
      ...plan(
        'parallel',
        null,
        [
          { starts: [0, 0, 0, 0], durs: [20, 25, 18, 22] },
          { starts: [0, 0, 0, 0], durs: [21, 24, 19, 23] },
        ],
        10_000_000,
      ),
    ];
    const data = (baseW: number | null): StudyData => {
      const r = run(MAINTENANCE_SPECS.plans, ms, { power_idle_w: { 'r1-h1': 100, 'r1-h2': 100 } });
      return { runs: [{ name: MAINTENANCE_SPECS.plans, run: r, workload: [], power: baseW === null ? [] : powerSamples(ms, baseW) }] };
    };

    it('plan energies from samples: the window integral, below the per-migration sum of the parallel plan', () => {
      const es = planEnergies(data(0).runs[0].run, data(0).runs[0].power!, ENERGY_MIN_COVERAGE);
      // 1 Hz readings of a step: the trapezoid ramps down over the last second of each migration (-5 J per host and end)
      // sequential rep 0: 40 s, one migration at a time: 2 hosts x 10 W x 40 s, one end
      expect(es.get('sequential|0')!.joules).toBeCloseTo(800 - 10, 6);
      // parallel rep 0: 2 hosts x 10 W x (20 + 25 + 18 + 22) s, each second counted once; four ends
      expect(es.get('parallel|0')!.joules).toBeCloseTo(1700 - 40, 6);
    });

    it('guests drawing power the whole plan: the shorter parallel window uses less -> holds; without -> does not hold', () => {
      const busy = byId(evaluateMaintenancePlans(data(50)), 'energy');
      // sequential 40 / 41 s, parallel 25 / 24 s: 2 x 50 W x window + the migrations' 10 W
      expect(busy.numbers.seq_energy_j).toBeCloseTo((2 * 50 * 40 + 790 + 2 * 50 * 41 + 810) / 2, 6);
      expect(busy.numbers.par_energy_j).toBeCloseTo((2 * 50 * 25 + 1660 + 2 * 50 * 24 + 1700) / 2, 6);
      expect(busy.verdict).toBe('holds');
      expect(busy.measured).toMatch(/plan window/);
      const idle = byId(evaluateMaintenancePlans(data(0)), 'energy');
      expect(idle.verdict).toBe('does not hold');
      const none = byId(evaluateMaintenancePlans(data(null)), 'energy');
      expect(none.verdict).toBe('not run');
      expect(none.reason).toMatch(/no power samples/);
      expect(none.numbers).toEqual({});
    });
  });
});
