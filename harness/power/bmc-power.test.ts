import { describe, expect, it } from 'vitest';
import { baselineOf } from './bmc-power.ts';

describe('idle baseline from a BMC', () => {
  const pts = (ws: Array<number | null>) => ws.map((watts, i) => ({ tMs: i * 1000, watts }));
  it('is the median of the first n readings, gaps skipped', () => {
    expect(baselineOf(pts([120, null, 100, 300, 110, 500]), 3)).toBe(120);
    expect(baselineOf(pts([100, 104, 999]), 2)).toBe(102);
  });
  it('is null until n readings exist', () => {
    expect(baselineOf(pts([100, null, null]), 2)).toBeNull();
    expect(baselineOf([], 1)).toBeNull();
  });
});
