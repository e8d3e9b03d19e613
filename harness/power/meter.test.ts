import { describe, expect, it } from 'vitest';
import { excessEnergy, type PowerPoint } from './energy.ts';
import { around, insertByTime } from './meter.ts';
import { seededRng } from '../util/rng.ts';

describe('power readings kept in time order', () => {
  it('insertByTime appends in-order readings and places a late one after those at or before its time', () => {
    const list: PowerPoint[] = [];
    for (const [tMs, watts] of [
      [1000, 1],
      [2000, 2],
      [3000, 3],
      [2000, 4], // a late answer for the same time: after the first one, as a stable sort would put it
      [500, 5],
      [4000, null],
    ] as const)
      insertByTime(list, { tMs, watts });
    expect(list.map((p) => [p.tMs, p.watts])).toEqual([
      [500, 5],
      [1000, 1],
      [2000, 2],
      [2000, 4],
      [3000, 3],
      [4000, null],
    ]);
  });

  it('around gives the window with the point either side, and nothing past them', () => {
    const pts = [0, 1000, 2000, 3000, 4000].map((tMs) => ({ tMs, watts: 100 }));
    expect(around(pts, 1500, 2500).map((p) => p.tMs)).toEqual([1000, 2000, 3000]);
    expect(around(pts, 1000, 3000).map((p) => p.tMs)).toEqual([1000, 2000, 3000]);
    expect(around(pts, -500, 500).map((p) => p.tMs)).toEqual([0, 1000]);
    expect(around(pts, 3500, 9000).map((p) => p.tMs)).toEqual([3000, 4000]);
    expect(around(pts, 9000, 9500).map((p) => p.tMs)).toEqual([4000]);
    expect(around([], 0, 1)).toEqual([]);
  });

  it('energy over the window equals energy over every reading, bit for bit (random readings, gaps, repeats, windows)', () => {
    const rng = seededRng(17);
    for (let trial = 0; trial < 200; trial++) {
      const list: PowerPoint[] = [];
      let t = rng.int(5000);
      const n = 1 + rng.int(300);
      for (let i = 0; i < n; i++) {
        // mostly 1 Hz with jitter, some repeats of a time, some long gaps, some missing readings, some late
        t += rng.next() < 0.05 ? 0 : rng.next() < 0.05 ? 3000 + rng.int(5000) : 800 + rng.int(400);
        const late = rng.next() < 0.03 ? rng.int(3000) : 0;
        insertByTime(list, { tMs: t - late, watts: rng.next() < 0.05 ? null : 100 + rng.next() * 100 });
      }
      const sorted = [...list].sort((a, b) => a.tMs - b.tMs);
      expect(list).toEqual(sorted);
      for (let w = 0; w < 20; w++) {
        const from = rng.int(t + 5000) - 2000;
        const to = from + rng.int(20_000);
        const all = excessEnergy(list, 110, from, to, { maxGapMs: 2500 });
        expect(excessEnergy(around(list, from, to), 110, from, to, { maxGapMs: 2500 })).toEqual(all);
      }
    }
  });
});
