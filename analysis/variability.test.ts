import { describe, expect, it } from 'vitest';
import { variabilityTable } from './variability.ts';
import { tCdf } from './stats/tdist.ts';
import { inMemoryRun, normalizeMigration, type RunDir } from './rundir.ts';

function run(): RunDir {
  const vals: [string, number][] = [
    ['A', 1],
    ['A', 2],
    ['A', 3],
    ['B', 4],
    ['B', 6],
    ['B', 8],
  ];
  const migrations = vals.map(([t, v], i) =>
    normalizeMigration({ id: `m${i}`, treatment: t, rep: i % 3, status: 'completed', total_ms: v }, i),
  );
  // A failed and a partial migration must not count.
  migrations.push(normalizeMigration({ id: 'f', treatment: 'A', status: 'failed', total_ms: 1000 }, 7));
  migrations.push(normalizeMigration({ id: 'p', treatment: 'B', status: 'completed', partial: true, total_ms: 1000 }, 8));
  return inMemoryRun({
    manifest: {
      name: 'hand',
      spec: {},
      factors: { x: [1, 2] },
      treatments: [
        { id: 'A', levels: { x: 1 } },
        { id: 'B', levels: { x: 2 } },
      ],
    },
    migrations,
  });
}

describe('variability table (hand-computed, 2 treatments x 3 values)', () => {
  it('matches the numbers worked out by hand', () => {
    const t = variabilityTable(run(), 'total_ms')!;
    expect(t.n).toBe(6);
    expect(t.overallMean).toBeCloseTo(4, 12); // (1+2+3+4+6+8)/6
    expect(t.treatmentMeansRatio).toBeCloseTo(3, 12); // 6 / 2
    expect(t.allRatio).toBeCloseTo(8, 12); // 8 / 1
    expect(t.maxWithinSd).toBeCloseTo(2, 12); // sd(A) = 1, sd(B) = 2
    expect(t.overallSd).toBeCloseTo(Math.sqrt(34 / 5), 12); // squared deviations 9+4+1+0+4+16
    const b = t.perTreatment.find((p) => p.treatment === 'B')!;
    const half = (4.302653 * 2) / Math.sqrt(3); // t(0.975, 2) * sd / sqrt(n)
    expect(b.ciLow).toBeCloseTo(6 - half, 5);
    expect(b.ciHigh).toBeCloseTo(6 + half, 5);
    expect(t.mainEffects).toEqual([
      {
        factor: 'x',
        levels: [
          { level: 1, n: 3, mean: 2 },
          { level: 2, n: 3, mean: 6 },
        ],
        spread: 4,
        ratio: 3,
        // between levels 3*(2-4)^2 + 3*(6-4)^2 = 24 on 1 df; within treatments (2 + 8) on 4 df: F = 24 / 2.5
        test: { f: expect.closeTo(9.6, 10), df1: 1, df2: 4, p: expect.closeTo(2 * (1 - tCdf(Math.sqrt(9.6), 4)), 10) },
      },
    ]);
    expect(t.interactions).toEqual([]); // one factor
  });
  it('returns null for a response nobody measured', () => {
    expect(variabilityTable(run(), 'energy_j')).toBeNull();
  });
});
