import { describe, expect, it } from 'vitest';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import { evaluateMaintenancePlans, MAINTENANCE_SPECS } from './maintenance-plans.ts';
import { mig, run, study } from './fixture.test-helpers.ts';
import type { Migration } from '../rundir.ts';

/** 4 VMs per repetition; `starts`/`durs` in s from the repetition's start. */
function plan(kind: string, k: number | null, reps: { starts: number[]; durs: number[] }[]): Migration[] {
  return reps.flatMap((r, rep) =>
    r.durs.map((d, i) => {
      const t0 = 1_000_000 * (rep + 1) + r.starts[i] * 1000;
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
});
