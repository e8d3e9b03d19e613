import { describe, expect, it } from 'vitest';
import { tCdf, tQuantile, meanCi } from './tdist.ts';
import { mannWhitney } from './mannwhitney.ts';
import { seededRng } from '../../harness/util/rng.ts';
import { nelderMead } from './neldermead.ts';

describe('t distribution', () => {
  it('matches tabulated quantiles', () => {
    expect(tQuantile(0.975, 2)).toBeCloseTo(4.302653, 5);
    expect(tQuantile(0.975, 10)).toBeCloseTo(2.228139, 5);
    expect(tQuantile(0.95, 1)).toBeCloseTo(6.313752, 4);
    expect(tCdf(0, 5)).toBeCloseTo(0.5, 12);
  });
  it('gives the hand-computed interval for [1,2,3]', () => {
    const ci = meanCi([1, 2, 3]);
    // mean 2, sd 1, se 1/sqrt(3), t(0.975,2) = 4.302653
    expect(ci.low).toBeCloseTo(2 - 4.302653 / Math.sqrt(3), 5);
    expect(ci.high).toBeCloseTo(2 + 4.302653 / Math.sqrt(3), 5);
  });
});

describe('Mann-Whitney U', () => {
  it('exact p for fully separated samples of 3 and 3 is 1/20 one-sided', () => {
    const r = mannWhitney([4, 5, 6], [1, 2, 3], 'greater');
    expect(r.method).toBe('exact');
    expect(r.u).toBe(9);
    expect(r.p).toBeCloseTo(1 / 20, 12);
    expect(mannWhitney([4, 5, 6], [1, 2, 3], 'two-sided').p).toBeCloseTo(0.1, 12);
    expect(mannWhitney([4, 5, 6], [1, 2, 3], 'less').p).toBeCloseTo(1, 12);
  });
  it('exact p equals brute-force enumeration of all rank splits', () => {
    const x = [1.1, 2.2, 3.3, 4.4],
      y = [0.5, 2.5, 6, 7, 8];
    const r = mannWhitney(x, y, 'less');
    expect(r.u).toBe(6); // pairs x > y: 1 + 1 + 2 + 2
    // Enumerate the C(9,4) = 126 ways to pick x's ranks; count U <= 6.
    let le = 0,
      total = 0;
    for (let mask = 0; mask < 1 << 9; mask++) {
      const ranks = [...Array(9).keys()].filter((i) => mask & (1 << i));
      if (ranks.length !== 4) continue;
      total++;
      const u = ranks.reduce((s, rk) => s + rk + 1, 0) - 10;
      if (u <= 6) le++;
    }
    expect(total).toBe(126);
    expect(r.p).toBeCloseTo(le / total, 12);
  });
  it('normal approximation with ties behaves like the exact test on big samples', () => {
    const rng = seededRng(3);
    const a = Array.from({ length: 60 }, () => Math.round(rng.normal() * 10));
    const b = Array.from({ length: 60 }, () => Math.round(rng.normal() * 10 + 8));
    const r = mannWhitney(b, a, 'greater');
    expect(r.method).toBe('normal');
    expect(r.p).toBeLessThan(1e-4);
    expect(mannWhitney(a, b, 'greater').p).toBeGreaterThan(0.99);
  });
});

describe('Nelder-Mead', () => {
  it('finds the Rosenbrock minimum', () => {
    const r = nelderMead(([x, y]) => (1 - x) ** 2 + 100 * (y - x * x) ** 2, [-1.2, 1], { maxIter: 10000, tol: 1e-14 });
    expect(r.x[0]).toBeCloseTo(1, 3);
    expect(r.x[1]).toBeCloseTo(1, 3);
  });
});
