import { describe, expect, it } from 'vitest';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import { bandwidthCells, evaluateMvm, MVM_SPECS, planComparisons } from './mvm.ts';
import { mig, migs, run, study } from './fixture.test-helpers.ts';
import type { Migration } from '../rundir.ts';

const byId = (fs: ReturnType<typeof evaluateMvm>, id: string) => fs.find((f) => f.id === id)!;
const stress = (kib: number, mbit: number, totals: number[]) =>
  migs(`t${kib}-${mbit}`, totals, { workload: `stress vm=100 vm_bytes=${kib}KiB`, link_rate_mbit: mbit });

function planned(kind: string, k: number | null, rep: number, durs: number[], starts: number[]): Migration[] {
  return durs.map((d, i) => {
    const t0 = 1e6 * (rep + 1) + starts[i] * 1000;
    return mig({
      treatment: `${kind}${k ?? ''}`,
      rep,
      vm: `vm${i + 1}`,
      total_ms: d * 1000,
      plan: { kind, k, action_id: `a${i}`, start_ms: t0, end_ms: t0 + d * 1000 },
    });
  });
}

describe('mvm evaluator', () => {
  it('duration super-linear in 1/bandwidth holds; merely inverse does not', () => {
    const superLin = [...stress(70, 25, [60000, 62000]), ...stress(70, 100, [10000, 10200]), ...stress(10, 25, [30000, 30500])];
    const fs = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, superLin) }));
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    expect(byId(fs, 'duration-vs-bandwidth').verdict).toBe('holds');
    expect(byId(fs, 'stress-bytes').verdict).toBe('holds');
    const inverse = [...stress(70, 25, [40000, 40400]), ...stress(70, 100, [10000, 10100])];
    const fs2 = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, inverse) }));
    expect(byId(fs2, 'duration-vs-bandwidth').verdict).toBe('does not hold');
  });

  it('one migration per cell (--quick): point estimates decide, and the reason says so', () => {
    // as measured by the quick run: 70K converged at 25 Mbit/s in 30.9 s, 4.6x its 6.68 s at 100 Mbit/s
    const one = [...stress(70, 25, [30900]), ...stress(70, 100, [6680]), ...stress(10, 25, [27100]), ...stress(10, 100, [6680])];
    const fs = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, one) }));
    expect(byId(fs, 'duration-vs-bandwidth')).toMatchObject({ verdict: 'holds', reason: expect.stringMatching(/point estimates/) });
    expect(byId(fs, 'stress-bytes')).toMatchObject({ verdict: 'holds', reason: expect.stringMatching(/point estimates/) });
    // merely inverse (x4 for a quarter of the bandwidth) and the light workload longer: neither holds
    const flat = [...stress(70, 25, [26000]), ...stress(70, 100, [6680]), ...stress(10, 25, [27100])];
    const fs2 = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, flat) }));
    expect(byId(fs2, 'duration-vs-bandwidth').verdict).toBe('does not hold');
    expect(byId(fs2, 'stress-bytes').verdict).toBe('does not hold');
  });

  it('a migration that did not complete is counted per cell, not averaged', () => {
    const ms = [
      ...stress(70, 25, [60000]),
      mig({ treatment: 'x', status: 'cancelled', total_ms: 180000, workload: 'stress vm=100 vm_bytes=70KiB', link_rate_mbit: 25 }),
    ];
    expect(bandwidthCells(ms)).toEqual([expect.objectContaining({ kib: 70, mbit: 25, totalMs: [60000], notCompleted: 1 })]);
  });

  it('migrations cancelled at max_time are lower bounds: they decide when they already exceed the 1/bandwidth prediction', () => {
    const atMax = (kib: number, mbit: number, ms: number) =>
      mig({
        treatment: `c${kib}-${mbit}`,
        status: 'cancelled',
        total_ms: ms,
        reason: `not completed within max_time ${ms / 1000}s; cancelled`,
        workload: `stress vm=10 vm_bytes=${kib}KiB`,
        link_rate_mbit: mbit,
      });
    const censored = [
      atMax(70, 25, 60000),
      atMax(70, 25, 60000),
      ...stress(70, 100, [6600, 6700]),
      ...stress(10, 25, [30000, 31000]),
      ...stress(10, 100, [6000, 6100]),
    ];
    const fs = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, censored) }));
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    // 1/bandwidth from 6.65 s at 100 Mbit/s predicts 26.6 s at 25; not done after 60 s
    expect(byId(fs, 'duration-vs-bandwidth')).toMatchObject({ verdict: 'holds', numbers: { total_lo_min_ms: 60000 } });
    expect(byId(fs, 'stress-bytes')).toMatchObject({ verdict: 'holds', numbers: { mbit: 25, total_heavy_min_ms: 60000 } });
    // a bound below the prediction (max_time too short) decides nothing
    const short = [atMax(70, 25, 20000), atMax(70, 25, 20000), ...stress(70, 100, [6600, 6700]), ...stress(10, 25, [30000, 31000])];
    const fs2 = evaluateMvm(study({ name: MVM_SPECS.bandwidth, run: run(MVM_SPECS.bandwidth, short) }));
    expect(byId(fs2, 'duration-vs-bandwidth').verdict).toBe('inconclusive');
    expect(byId(fs2, 'stress-bytes').verdict).toBe('inconclusive');
    // a failure that is not max_time is no bound
    expect(
      bandwidthCells([
        mig({
          treatment: 'f',
          status: 'failed',
          total_ms: 5000,
          reason: 'guest died',
          workload: 'stress vm=10 vm_bytes=70KiB',
          link_rate_mbit: 25,
        }),
      ])[0].censoredMs,
    ).toEqual([]);
  });

  it('slowdown and speedup of capped plans against sequential', () => {
    const ms = [
      ...planned('sequential', null, 0, [10, 10, 10, 10], [0, 10, 20, 30]),
      ...planned('sequential', null, 1, [10, 11, 10, 10], [0, 10, 21, 31]),
      ...planned('capped', 2, 0, [12, 12, 13, 12], [0, 0, 12, 12]),
      ...planned('capped', 2, 1, [12, 13, 12, 12], [0, 0, 13, 13]),
      ...planned('parallel', null, 0, [25, 30, 28, 33], [0, 0, 0, 0]),
      ...planned('parallel', null, 1, [27, 31, 26, 35], [0, 0, 0, 0]),
    ];
    const pc = planComparisons(ms);
    expect(pc.map((p) => p.concurrency)).toEqual([2, 4]);
    expect(pc[0].slowdown).toHaveLength(8);
    const fs = evaluateMvm(study({ name: MVM_SPECS.scheduler, run: run(MVM_SPECS.scheduler, ms) }));
    expect(byId(fs, 'slowdown-grows').verdict).toBe('holds');
    expect(byId(fs, 'capped-speedup').verdict).toBe('holds');
    expect(byId(fs, 'capped-speedup').numbers.speedup_k2).toBeCloseTo(40.5 / 25);
    expect(byId(fs, 'mvm-beats-capped').verdict).toBe('not run');
  });
});
