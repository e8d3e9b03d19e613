import { describe, expect, it } from 'vitest';
import { PeakAccumulator, peakPower } from './peak-power.ts';

describe('peak power', () => {
  it("sums each host's latest reading within a second and takes the highest sum; per host the highest reading", () => {
    const p = peakPower([
      { tMs: 1000, host: 'a', watts: 100 },
      { tMs: 1500, host: 'a', watts: 120 },
      { tMs: 1200, host: 'b', watts: 90 },
      { tMs: 2100, host: 'a', watts: 110 },
      { tMs: 2200, host: 'b', watts: 140 },
      { tMs: 2900, host: 'b', watts: null },
      { tMs: 3000, host: 'a', watts: 300 },
    ]);
    // second 1: a latest 120 + b 90 = 210; second 2: 110 + 140 = 250; second 3: a alone 300
    expect(p.total).toBe(300);
    expect(p.perHost).toEqual({ a: 300, b: 140 });
  });

  it('is the same fed incrementally in any order within a bin; null without readings', () => {
    const acc = new PeakAccumulator();
    acc.add(2200, 'b', 140);
    acc.add(2100, 'a', 110);
    acc.add(2050, 'a', 500); // earlier in the same second: not the latest reading of a
    expect(acc.result().total).toBe(250);
    expect(peakPower([]).total).toBeNull();
  });
});
