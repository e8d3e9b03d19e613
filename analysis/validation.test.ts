import { describe, expect, it } from 'vitest';
import { mbitToMiBps } from './models/duration.ts';
import { simulatePrecopy } from './models/precopy.ts';
import { fitParams, type CalibrationMigration, type CalibrationRun } from './calibration/fit.ts';
import { fitEnergyPoints } from './models/energy.ts';
import { validateRun } from './validation.ts';

const HC = { HPs: 6, HPd: 1, CPr: 0.4 };
const W = 'hot';
const exactCurve = [0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.5, 2, 3, 4].map((t) => ({
  t,
  d: t <= HC.HPd ? (HC.HPs / HC.HPd) * t : HC.HPs + HC.CPr * (t - HC.HPd),
}));

/** Migrations whose duration is the QEMU-like prediction from the truth divided by (1 + err): relative error |err| by construction. */
function migs(spec: { mbit: number; err?: number; workload?: string }[]): CalibrationMigration[] {
  return spec.map(({ mbit, err = 0, workload = W }, i) => {
    const r = simulatePrecopy(HC, { bw: mbitToMiBps(mbit, 0.956), mu: 100, D: 0.3, syncS: 0.02, maxTime: 3600 });
    return {
      key: `/r#m${i}`,
      id: `m${i}`,
      workload,
      status: r.converges ? 'completed' : 'cancelled',
      total_ms: r.converges ? (r.d / (1 + err)) * 1000 : 60_000,
      link_rate_mbit: mbit,
      memory_mib: 128,
      mu_mib: 100,
      downtime_limit_ms: 300,
      setup_ms: 0,
      transferred_bytes: null,
      energy_j: null,
      energy_coverage: null,
      partial: false,
    };
  });
}
const run = (migrations: CalibrationMigration[], traced: boolean): CalibrationRun => ({
  runDir: '/r',
  name: 'v',
  specHash: null,
  migrations,
  curves: traced ? new Map([[W, exactCurve]]) : new Map(),
});

describe('calibration apart from validation within one run', () => {
  it('with a D(t) trace every migration validates; scores are the hand-computed median and p90 of the errors', () => {
    // errors 5, 10, 20, 30 %: median (10 + 20) / 2 = 15 %, p90 at rank 2.7 = 20 + 0.7 x 10 = 27 %
    const m = migs([{ mbit: 40 }, { mbit: 100, err: 0.1 }, { mbit: 150, err: 0.2 }, { mbit: 200, err: 0.05 }, { mbit: 250, err: -0.3 }]);
    expect(m[0].status).toBe('cancelled'); // the 6 MiB hot set never converges at 40 Mbit/s
    const v = validateRun(run(m, true), { syncS: 0.02 });
    expect(v.folds).toHaveLength(1);
    expect(v.folds[0]).toMatchObject({ method: 'trace', calibratedBy: [], validated: ['m0', 'm1', 'm2', 'm3', 'm4'] });
    expect(v.rows.every((r) => r.role === 'validated' && r.calibrates.length === 0)).toBe(true);
    const q = v.scores.find((s) => s.model === 'qemu')!;
    expect(q.n).toBe(4);
    expect(q.median_rel_error!).toBeCloseTo(0.15, 2);
    expect(q.p90_rel_error!).toBeCloseTo(0.27, 2);
    expect(q.verdicts_right).toBe(5);
    expect(q.verdicts_wrong).toBe(0);
    // the cancelled migration has a verdict from every model
    expect(Object.keys(v.rows[0].models).sort()).toEqual(['mvm', 'mvm-mu', 'qemu']);
  });

  it('without a trace leaves one link rate out: no migration predicts with parameters its own duration fitted', () => {
    const m = migs([100, 100, 150, 150, 200, 200, 300, 300].map((mbit) => ({ mbit })));
    const single = migs([{ mbit: 100, workload: 'lonely' }]).map((x) => ({ ...x, key: '/r#s', id: 's' }));
    const v = validateRun(run([...m, ...single], false), { syncS: 0.02 });
    const hot = v.folds.filter((f) => f.workload === W);
    expect(hot.map((f) => f.heldOutRateMbit)).toEqual([100, 150, 200, 300]);
    for (const f of hot) {
      expect(f.method).toBe('leave-rate-out');
      expect(f.calibrationRatesMbit).not.toContain(f.heldOutRateMbit);
      expect(f.calibratedBy.length).toBe(6);
      for (const id of f.validated) expect(f.calibratedBy).not.toContain(id);
      expect(f.validated).toHaveLength(2);
    }
    for (const r of v.rows.filter((x) => x.workload === W)) {
      expect(r.role).toBe('validated');
      expect(r.calibrates).toHaveLength(3); // the three other folds
      expect(r.calibrates).not.toContain(r.fold);
    }
    // a workload at one rate has nothing to calibrate from
    const s = v.rows.find((r) => r.id === 's')!;
    expect(s.role).toBe('not predicted');
    expect(s.note).toMatch(/no other link rate/);
    expect(v.validated).toBe(8);
    expect(v.notPredicted).toBe(1);
    // durations made by the QEMU-like model, hot/cold fitted through mVM's closed form on the other rates: close, not exact
    expect(v.scores.find((x) => x.model === 'qemu')!.median_rel_error!).toBeLessThan(0.1);
  });

  it('the display fit takes a pooled energy fit over the same points as it is, and fits again for other points', () => {
    // energy E = 0.5 J/MB x volume + 40 J with some scatter, every migration completed
    const m = migs([{ mbit: 100 }, { mbit: 150 }, { mbit: 200 }, { mbit: 250 }, { mbit: 300 }]).map((x, i) => ({
      ...x,
      transferred_bytes: (200 + 37 * i) * 1e6,
      energy_j: 0.5 * (200 + 37 * i) + 40 + (i % 2 ? 3 : -2),
      energy_coverage: 1,
    }));
    const pts = m.map((x) => ({ id: x.id, mb: x.transferred_bytes / 1e6, energy: x.energy_j }));
    const o = { syncS: 0.02, now: new Date(0) };
    const plain = validateRun(run(m, true), o);
    const same = fitEnergyPoints('all', pts)!;
    const reused = validateRun(run(m, true), { ...o, energyFit: same });
    expect(plain.display.energy).toHaveLength(1);
    expect(reused.display).toEqual(plain.display);
    // it is taken, not fitted again: a fit over the same points with another slope shows through
    expect(validateRun(run(m, true), { ...o, energyFit: { ...same, alpha: 123 } }).display.energy[0].alpha).toBe(123);
    // a fit of other points (one energy differs) is not taken: the display fit is fitted again
    const other = fitEnergyPoints(
      'all',
      pts.map((p, i) => (i === 4 ? { ...p, energy: p.energy + 50 } : p)),
    )!;
    expect(other.alpha).not.toBe(same.alpha);
    expect(validateRun(run(m, true), { ...o, energyFit: other }).display).toEqual(plain.display);
  });

  it('a fit without the energy model (validation folds) has the same hot/cold parameters and sources of durations', () => {
    const m = migs([{ mbit: 100 }, { mbit: 150 }, { mbit: 200 }, { mbit: 250 }, { mbit: 300 }]).map((x, i) => ({
      ...x,
      transferred_bytes: (200 + 37 * i) * 1e6,
      energy_j: 0.5 * (200 + 37 * i) + 40,
      energy_coverage: 1,
    }));
    const o = { syncS: 0.02, now: new Date(0) };
    const full = fitParams([run(m, false)], o).params;
    const lean = fitParams([run(m, false)], { ...o, energy: false }).params;
    expect(full.energy).toHaveLength(1);
    expect(lean.energy).toEqual([]);
    expect(lean.hotcold).toEqual(full.hotcold);
    expect(lean.sources.map((x) => x.duration_migrations)).toEqual(full.sources.map((x) => x.duration_migrations));
  });
});
