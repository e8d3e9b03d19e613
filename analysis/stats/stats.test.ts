import { describe, expect, it } from 'vitest';
import { tCdf, tQuantile, meanCi } from './tdist.ts';
import { mannWhitney } from './mannwhitney.ts';
import { seededRng } from '../../harness/util/rng.ts';
import { nelderMead, sortByValue } from './neldermead.ts';

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

  // the implementation as first written (an array per trial point and per vertex): the reused-array one must
  // take exactly the same steps, NaN and infinite values included
  function textbook(f: (x: number[]) => number, x0: number[], opts: { step: number[]; maxIter: number; tol: number }) {
    const n = x0.length;
    let simplex: { x: number[]; v: number }[] = [{ x: [...x0], v: f(x0) }];
    for (let i = 0; i < n; i++) {
      const x = [...x0];
      x[i] += opts.step[i];
      simplex.push({ x, v: f(x) });
    }
    let it = 0;
    for (; it < opts.maxIter; it++) {
      simplex.sort((a, b) => a.v - b.v);
      const best = simplex[0],
        worst = simplex[n];
      if (Math.abs(worst.v - best.v) <= opts.tol * (Math.abs(best.v) + opts.tol)) break;
      const c = new Array(n).fill(0);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[j] += simplex[i].x[j] / n;
      const at = (t: number) => c.map((cj, j) => cj + t * (worst.x[j] - cj));
      const xr = at(-1),
        vr = f(xr);
      if (vr < best.v) {
        const xe = at(-2),
          ve = f(xe);
        simplex[n] = ve < vr ? { x: xe, v: ve } : { x: xr, v: vr };
      } else if (vr < simplex[n - 1].v) simplex[n] = { x: xr, v: vr };
      else {
        const xc = vr < worst.v ? at(-0.5) : at(0.5);
        const vc = f(xc);
        if (vc < Math.min(vr, worst.v)) simplex[n] = { x: xc, v: vc };
        else {
          simplex = simplex.map((p, i) =>
            i === 0
              ? p
              : (() => {
                  const x = p.x.map((xj, j) => best.x[j] + 0.5 * (xj - best.x[j]));
                  return { x, v: f(x) };
                })(),
          );
        }
      }
    }
    simplex.sort((a, b) => a.v - b.v);
    return { x: simplex[0].x, value: simplex[0].v, iterations: it };
  }

  it('orders vertices exactly as Array.prototype.sort with (a, b) => a.v - b.v, for NaN, infinities and ties too', () => {
    const rng = seededRng(9);
    const values = [NaN, Infinity, -Infinity, 0, 1, 1, 2, -3.5];
    for (let k = 0; k < 20_000; k++) {
      const a = Array.from({ length: 1 + (k % 6) }, (_, i) => ({ x: [i], v: values[rng.int(values.length)] }));
      const expected = [...a].sort((p, q) => p.v - q.v);
      sortByValue(a);
      expect(a.map((p) => p.x[0])).toEqual(expected.map((p) => p.x[0]));
    }
  });

  it('takes exactly the steps of the textbook form (same points, values and iteration count), also where f is NaN or infinite', () => {
    const rng = seededRng(3);
    for (let k = 0; k < 400; k++) {
      const n = 1 + (k % 4);
      const a = Array.from({ length: n }, () => rng.normal() * 3);
      const w = Array.from({ length: n }, () => 0.1 + rng.next() * 10);
      const kind = k % 4;
      const f = (x: number[]) => {
        let s = 0;
        for (let j = 0; j < n; j++) s += w[j] * (x[j] - a[j]) ** 2 + (kind === 1 ? Math.sin(5 * x[j]) : 0);
        // a region where the cost is NaN or infinite (as a fit's cost is for parameters that overflow)
        if (kind === 2 && x[0] > a[0] + 1) return x[0] > a[0] + 2 ? Infinity : NaN;
        // plateaus: ties between vertices
        if (kind === 3 && Math.abs(x[n - 1]) > 3) return 1e3;
        return s;
      };
      const x0 = a.map((v) => v + rng.normal() * 4);
      const opts = { step: x0.map(() => 0.5 + rng.next()), maxIter: 200 + (k % 5) * 300, tol: k % 2 ? 1e-12 : 1e-6 };
      expect(nelderMead(f, x0, opts), `case ${k}`).toEqual(textbook(f, x0, opts));
    }
  });
});
