import { describe, expect, it } from 'vitest';
import { seededRng } from '../../harness/util/rng.ts';
import { bootstrapCi } from '../stats/bootstrap.ts';
import { olsIndexed } from '../stats/regression.ts';
import { bootstrapOlsCi } from './energy-bootstrap.ts';

describe('Rng.ints', () => {
  it('draws what as many calls of int draw, and the sequence goes on from there', () => {
    const a = seededRng(11),
      b = seededRng(11);
    const out = new Int32Array(1000);
    a.ints(out, 37);
    expect([...out]).toEqual(Array.from({ length: 1000 }, () => b.int(37)));
    expect(a.next()).toBe(b.next());
  });
});

describe('bootstrapOlsCi', () => {
  it('gives bit for bit what bootstrapCi over olsIndexed gives', () => {
    const rng = seededRng(7);
    for (const n of [3, 10, 257]) {
      const X = Float64Array.from({ length: n }, () => Math.round(rng.next() * 1000) / 7);
      const Y = Float64Array.from(X, (x) => 0.5 * x + 20 + rng.normal() * 3);
      for (const opts of [{}, { seed: 42, replicates: 300 }, { seed: 3, replicates: 50, level: 0.9 }]) {
        const want = bootstrapCi(n, (idx) => olsIndexed(X, Y, idx), opts);
        expect(bootstrapOlsCi(X, Y, opts)).toStrictEqual(want);
      }
    }
  });

  it('leaves out degenerate resamples the same way (few distinct x)', () => {
    const X = Float64Array.from([1, 1, 1, 2]),
      Y = Float64Array.from([1, 2, 3, 4]);
    const want = bootstrapCi(4, (idx) => olsIndexed(X, Y, idx), { seed: 5, replicates: 200 });
    expect(bootstrapOlsCi(X, Y, { seed: 5, replicates: 200 })).toStrictEqual(want);
    // all x equal: no resample has a line
    expect(bootstrapOlsCi(Float64Array.from([2, 2, 2]), Float64Array.from([1, 2, 3]))).toStrictEqual([]);
  });
});
