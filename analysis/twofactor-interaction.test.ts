import { describe, expect, it } from 'vitest';
import { seededRng } from '../harness/util/rng.ts';
import { additiveFit, fSurvival, interaction, mainEffectTest, pureError } from './twofactor-interaction.ts';
import { tCdf } from './stats/tdist.ts';
import { variabilityTable } from './variability.ts';
import { inMemoryRun, normalizeMigration } from './rundir.ts';
import { mainEffectsTable } from './report/tables.ts';
import type { AnalysisResult } from './analyze.ts';

type Obs = { a: string; b: string; y: number; t: string };
/** Observations of cells (a, b) with the given means and the same offsets (noise with known variance) in every cell. */
function cells(means: Record<string, number>, offsets: number[], reps: Record<string, number> = {}): Obs[] {
  const out: Obs[] = [];
  for (const [k, m] of Object.entries(means)) {
    const [a, b] = k.split('/');
    const offs = reps[k] ? Array.from({ length: reps[k] }, (_, i) => offsets[i % offsets.length]) : offsets;
    // symmetric offsets keep the cell mean exact
    for (const o of offs) out.push({ a, b, y: m + o, t: k });
  }
  return out;
}
const errOf = (obs: Obs[]) => {
  const byT = new Map<string, number[]>();
  for (const o of obs) byT.set(o.t, [...(byT.get(o.t) ?? []), o.y]);
  return pureError(byT);
};

describe('F distribution', () => {
  it('gives the tabulated 5 % critical values and agrees with t for one numerator df', () => {
    expect(fSurvival(5.3177, 1, 8)).toBeCloseTo(0.05, 4);
    expect(fSurvival(4.459, 2, 8)).toBeCloseTo(0.05, 4);
    expect(fSurvival(2.866, 4, 20)).toBeCloseTo(0.05, 4);
    expect(fSurvival(9.6, 1, 4)).toBeCloseTo(2 * (1 - tCdf(Math.sqrt(9.6), 4)), 10);
    expect(fSurvival(0, 2, 5)).toBe(1);
    expect(fSurvival(Infinity, 2, 5)).toBe(0);
  });
});

describe('two-factor interaction', () => {
  it('2 x 2 with a known interaction: difference of differences, its interval and the F test', () => {
    // B adds 10 at A=a1 but 30 at A=a2: interaction 20
    const obs = cells({ 'a1/b1': 10, 'a1/b2': 20, 'a2/b1': 30, 'a2/b2': 60 }, [-1, 0, 1]);
    const err = errOf(obs);
    expect(err).toEqual({ ss: 8, df: 8 });
    const i = interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2'], obs, err);
    expect(i.contrast!.value).toBeCloseTo(20, 12);
    const half = 2.306004 * Math.sqrt(1 * (4 / 3)); // t(0.975, 8) * sqrt(MSE * sum 1/n)
    expect(i.contrast!.low).toBeCloseTo(20 - half, 4);
    expect(i.contrast!.high).toBeCloseTo(20 + half, 4);
    expect(i.ss).toBeCloseTo((3 * 20 ** 2) / 4, 8); // balanced 2 x 2: n * contrast^2 / 4
    expect(i.test!.f).toBeCloseTo(300, 6);
    expect(i.test!.df1).toBe(1);
    expect(i.test!.p).toBeLessThan(1e-6);
    expect(i.maxDeviation).toBeCloseTo(5, 10); // contrast / 4 in every cell
  });

  it('additive cells (no interaction): zero interaction, p = 1, also with unbalanced cells', () => {
    const mu = 100,
      alpha = { a1: -20, a2: 5, a3: 15 },
      beta = { b1: -7, b2: 7 };
    const means: Record<string, number> = {};
    for (const [a, x] of Object.entries(alpha)) for (const [b, y] of Object.entries(beta)) means[`${a}/${b}`] = mu + x + y;
    for (const reps of [{}, { 'a1/b1': 6, 'a3/b2': 4 }] as Record<string, number>[]) {
      const obs = cells(means, [-2, 2], reps);
      const i = interaction('A', 'B', ['a1', 'a2', 'a3'], ['b1', 'b2'], obs, errOf(obs));
      expect(i.contrast).toBeNull(); // 3 x 2
      expect(i.ss!).toBeLessThan(1e-9);
      expect(i.maxDeviation!).toBeLessThan(1e-9);
      expect(i.test!.df1).toBe(2);
      expect(i.test!.p).toBeCloseTo(1, 9);
    }
  });

  it('3 x 2 balanced: the sum of squares is the textbook n * sum of squared (cell - row - column + grand) residuals', () => {
    const means = { 'a1/b1': 10, 'a1/b2': 14, 'a2/b1': 12, 'a2/b2': 25, 'a3/b1': 9, 'a3/b2': 11 };
    const obs = cells(means, [-3, 1, 2]);
    const i = interaction('A', 'B', ['a1', 'a2', 'a3'], ['b1', 'b2'], obs, errOf(obs));
    const m = [
      [10, 14],
      [12, 25],
      [9, 11],
    ];
    const row = m.map((r) => (r[0] + r[1]) / 2);
    const col = [0, 1].map((j) => m.reduce((s, r) => s + r[j], 0) / 3);
    const grand = row.reduce((s, x) => s + x, 0) / 3;
    let ss = 0;
    for (let a = 0; a < 3; a++) for (let b = 0; b < 2; b++) ss += 3 * (m[a][b] - row[a] - col[b] + grand) ** 2;
    expect(i.ss).toBeCloseTo(ss, 8);
    const mse = (9 + 1 + 4) / 2; // each cell: offsets -3, 1, 2 around 0, df 2
    expect(i.test!.f).toBeCloseTo(ss / 2 / mse, 8);
    expect(i.test!.df2).toBe(12);
    // the additive fit of a balanced table is row + column - grand
    const fit = additiveFit(
      m.map(() => [3, 3]),
      m,
    );
    expect(fit[1][1]).toBeCloseTo(row[1] + col[1] - grand, 9);
  });

  it('unbalanced cells: the additive fit is the weighted least-squares one (weighted residuals sum to 0 in every row and column)', () => {
    const n = [
      [6, 1, 2],
      [2, 5, 3],
    ];
    const m = [
      [10, 40, 15],
      [30, 12, 50],
    ];
    const fit = additiveFit(n, m);
    for (let i = 0; i < 2; i++) expect(n[i].reduce((s, k, j) => s + k * (m[i][j] - fit[i][j]), 0)).toBeCloseTo(0, 8);
    for (let j = 0; j < 3; j++) expect(n.reduce((s, r, i) => s + r[j] * (m[i][j] - fit[i][j]), 0)).toBeCloseTo(0, 8);
    // an unweighted fit (row + column - grand of the cell means) is not it
    const row0 = (10 + 40 + 15) / 3,
      col0 = (10 + 30) / 2,
      grand = (10 + 40 + 15 + 30 + 12 + 50) / 6;
    expect(Math.abs(fit[0][0] - (row0 + col0 - grand))).toBeGreaterThan(0.5);
  });

  it('rejects no-interaction data at about the nominal 5 % rate (seeded normal noise)', () => {
    const rng = seededRng(7);
    let rejected = 0;
    const N = 400;
    for (let k = 0; k < N; k++) {
      const obs: Obs[] = [];
      for (const [a, x] of [
        ['a1', 0],
        ['a2', 3],
      ] as const)
        for (const [b, y] of [
          ['b1', 0],
          ['b2', 1],
          ['b3', 5],
        ] as const)
          for (let r = 0; r < 4; r++) obs.push({ a, b, y: 50 + x + y + rng.normal(), t: `${a}/${b}` });
      if (interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2', 'b3'], obs, errOf(obs)).test!.p < 0.05) rejected++;
    }
    expect(rejected / N).toBeGreaterThan(0.02);
    expect(rejected / N).toBeLessThan(0.09);
  });

  it('with empty cells tests over the filled ones; says why it cannot test: nothing left, split levels, no repetitions', () => {
    // 2 x 3 with one cell empty: 5 filled - (2 + 3 - 1) = 1 df; additive filled cells -> no interaction
    const add = cells({ 'a1/b1': 1, 'a1/b2': 2, 'a1/b3': 4, 'a2/b1': 11, 'a2/b2': 12 }, [-1, 1]);
    const k = interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2', 'b3'], add, errOf(add));
    expect(k.test!.df1).toBe(1);
    expect(k.test!.p).toBeCloseTo(1, 9);
    expect(k.note).toBe('1 empty cell(s) of 6: tested over the others');
    const bent = cells({ 'a1/b1': 1, 'a1/b2': 2, 'a1/b3': 4, 'a2/b1': 11, 'a2/b2': 30 }, [-1, 1]);
    expect(interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2', 'b3'], bent, errOf(bent)).test!.p).toBeLessThan(0.001);
    const split = cells({ 'a1/b1': 1, 'a2/b2': 5, 'a1/b3': 2, 'a2/b4': 3 }, [-1, 1]);
    expect(interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2', 'b3', 'b4'], split, errOf(split)).note).toMatch(/split the levels/);
    const gap = cells({ 'a1/b1': 1, 'a1/b2': 2, 'a2/b1': 3 }, [-1, 1]);
    const i = interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2'], gap, errOf(gap));
    expect(i.test).toBeNull();
    expect(i.contrast).toBeNull();
    expect(i.note).toBe('1 empty cell(s) of 4: no interaction left to test');
    expect(i.cells.find((c) => c.a === 'a2' && c.b === 'b2')).toEqual({ a: 'a2', b: 'b2', n: 0, mean: null });
    const once = cells({ 'a1/b1': 1, 'a1/b2': 2, 'a2/b1': 3, 'a2/b2': 9 }, [0]);
    const j = interaction('A', 'B', ['a1', 'a2'], ['b1', 'b2'], once, errOf(once));
    expect(j.contrast!.value).toBe(5);
    expect(j.test).toBeNull();
    expect(j.note).toMatch(/no repetitions/);
    expect(mainEffectTest([{ n: 3, mean: 1 }], { ss: 1, df: 2 })).toBeNull(); // one level
  });
});

describe('interactions in the variability table and the main-effects table', () => {
  it('every pair of varied factors gets a row with its cell means and test', () => {
    const levels = { A: ['x', 'y'], B: [1, 2], C: ['only'] };
    const treatments = [
      { id: 't1', levels: { A: 'x', B: 1, C: 'only' } },
      { id: 't2', levels: { A: 'x', B: 2, C: 'only' } },
      { id: 't3', levels: { A: 'y', B: 1, C: 'only' } },
      { id: 't4', levels: { A: 'y', B: 2, C: 'only' } },
    ];
    const mean: Record<string, number> = { t1: 100, t2: 200, t3: 300, t4: 800 }; // interaction (800-300)-(200-100) = 400
    const migrations = treatments.flatMap((t, k) =>
      [-10, 0, 10].map((o, r) =>
        normalizeMigration({ id: `m${k}${r}`, treatment: t.id, rep: r, status: 'completed', total_ms: mean[t.id] + o }, 0),
      ),
    );
    const run = inMemoryRun({ manifest: { name: 'ix', factors: levels, treatments }, migrations });
    const v = variabilityTable(run, 'total_ms')!;
    expect(v.pureError).toEqual({ ss: 800, df: 8 });
    expect(v.interactions.map((i) => `${i.a}x${i.b}`)).toEqual(['AxB']); // C has one level
    expect(v.interactions[0].contrast!.value).toBeCloseTo(400, 9);
    expect(v.mainEffects.find((e) => e.factor === 'A')!.test!.p).toBeLessThan(0.001);
    const table = mainEffectsTable({ variability: [v] } as unknown as AnalysisResult);
    const row = table.rows.find((r) => r[1] === 'A × B')!;
    expect(row[2]).toBe('x × 1: 100.0; x × 2: 200.0; y × 1: 300.0; y × 2: 800.0');
    expect(row[3]).toMatch(/^Δ of Δ 400\.0 \[3\d\d\.\d, 4\d\d\.\d\]$/);
    expect(row[5]).toMatch(/^F\(1, 8\) = .*, p < 0\.001: yes$/);
  });
});
