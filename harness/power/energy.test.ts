import { describe, expect, it } from 'vitest';
import { excessEnergy } from './energy.ts';
import { jitterStats } from './jitter.ts';
import { seededRng } from '../util/rng.ts';

describe('excessEnergy', () => {
  it('integrates (P - idle) by trapezoids, matching a hand computation', () => {
    // 110 W idle; readings 110,120,130,120 at 0,1,2,3 s.
    // Excess: trapezoids (0+10)/2 + (10+20)/2 + (20+10)/2 = 5 + 15 + 15 = 35 J over 3 s.
    const pts = [0, 1, 2, 3].map((s, i) => ({ tMs: s * 1000, watts: [110, 120, 130, 120][i] }));
    const e = excessEnergy(pts, 110, 0, 3000);
    expect(e.joules).toBeCloseTo(35, 9);
    expect(e.coveredFraction).toBe(1);
  });

  it('clips to the interval with linear interpolation', () => {
    // Between 0.5 s and 1.5 s: excess goes 5 -> 10 -> 15; area = (5+10)/2*0.5 + (10+15)/2*0.5 = 3.75 + 6.25 = 10 J.
    const pts = [0, 1, 2].map((s, i) => ({ tMs: s * 1000, watts: [110, 120, 130][i] }));
    expect(excessEnergy(pts, 110, 500, 1500).joules).toBeCloseTo(10, 9);
  });

  it('does not bridge a null reading or a long hole, and reports the covered fraction', () => {
    const pts = [
      { tMs: 0, watts: 120 },
      { tMs: 1000, watts: 120 }, // 10 J
      { tMs: 2000, watts: null }, // gap: [1,3] s not covered
      { tMs: 3000, watts: 130 },
      { tMs: 4000, watts: 130 }, // 20 J
      { tMs: 9000, watts: 130 }, // 5 s hole > maxGap: not covered
    ];
    const e = excessEnergy(pts, 110, 0, 9000);
    expect(e.joules).toBeCloseTo(30, 9);
    expect(e.coveredMs).toBe(2000);
    expect(e.coveredFraction).toBeCloseTo(2 / 9, 9);
  });

  // the harness computes a migration's energy once each host has one reading at or past its end
  // (harness/experiment/treatment.ts): readings in time order, so later ones must not change it
  it('is final once there is a reading at or past the end: later readings change neither energy nor coverage', () => {
    const rng = seededRng(7);
    for (let k = 0; k < 200; k++) {
      const pts: { tMs: number; watts: number | null }[] = [];
      for (let t = rng.next() * 1000; pts.length < 40; t += 200 + rng.next() * 2400)
        pts.push({ tMs: Math.round(t), watts: rng.next() < 0.1 ? null : 100 + rng.next() * 60 });
      const from = pts[3].tMs + rng.next() * 5000;
      const to = from + rng.next() * 20_000;
      const first = pts.findIndex((p) => p.tMs >= to);
      if (first < 0) continue;
      const all = excessEnergy(pts, 110, from, to, { maxGapMs: 2500 });
      const then = excessEnergy(pts.slice(0, first + 1), 110, from, to, { maxGapMs: 2500 });
      expect(then).toEqual(all);
    }
  });
});

describe('jitterStats', () => {
  it('reports mean, median, p99 and largest deviation from the target', () => {
    const j = jitterStats([1000, 1010, 990, 1000, 1100], 1000);
    expect(j.count).toBe(5);
    expect(j.meanMs).toBeCloseTo(1020, 9);
    expect(j.p50Ms).toBe(1000);
    expect(j.maxAbsDevMs).toBe(100);
    expect(j.p99Ms).toBeCloseTo(1010 + 0.96 * 90, 6);
  });
});
