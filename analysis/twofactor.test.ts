import { describe, expect, it } from 'vitest';
import { twoFactorViews, levelLabel } from './twofactor.ts';
import { inMemoryRun, normalizeMigration } from './rundir.ts';

describe('two-factor views', () => {
  it('mean response per cell of A x B over completed migrations, empty cells null', () => {
    const levels = (a: number, b: string) => ({ A: a, B: b });
    const treatments = [
      { id: 't1', levels: levels(1, 'x') },
      { id: 't2', levels: levels(1, 'y') },
      { id: 't3', levels: levels(2, 'x') },
      { id: 't4', levels: levels(2, 'y') },
    ];
    const m = (id: string, treatment: string, total: number, status = 'completed') =>
      normalizeMigration({ id, treatment, status, total_ms: total, downtime_observed_ms: total / 10 }, 0);
    const r = inMemoryRun({
      manifest: { name: 'tf', factors: { A: [1, 2], B: ['x', 'y'], C: ['only'] }, treatments },
      migrations: [m('a', 't1', 100), m('b', 't1', 200), m('c', 't2', 400), m('d', 't3', 1000), m('e', 't3', 5000, 'cancelled')],
    });
    const views = twoFactorViews(r);
    expect(views.map((v) => `${v.a}x${v.b}:${v.response}`)).toEqual(['AxB:total_ms', 'AxB:downtime_observed_ms']); // C has one level
    expect(views[0].cells).toEqual([
      { a: '1', b: 'x', mean: 150, n: 2 },
      { a: '1', b: 'y', mean: 400, n: 1 },
      { a: '2', b: 'x', mean: 1000, n: 1 },
      { a: '2', b: 'y', mean: null, n: 0 },
    ]);
    expect(views[1].cells[0].mean).toBe(15);
    expect(twoFactorViews(inMemoryRun({ manifest: { name: 'one', factors: { A: [1, 2] } } }))).toEqual([]);
    expect(levelLabel('{"kind":"dirty","wset":"40MiB","trace":{"reps":1}}')).toBe('dirty wset=40MiB');
  });
});
