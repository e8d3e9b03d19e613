import { describe, expect, it } from 'vitest';
import { PeakAccumulator, peakPower, type PeakPower } from './peak-power.ts';
import { seededRng } from '../util/rng.ts';

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

  it('gives the same result as a map of bins for ordered, shuffled and partly ordered readings', () => {
    /** The definition written plainly: a map of second bins, each host's latest reading per bin. */
    function reference(rs: { tMs: number; host: string; watts: number }[]): PeakPower {
      const bins = new Map<number, Map<string, { t: number; w: number }>>();
      const hostMax = new Map<string, number>();
      for (const r of rs) {
        if (r.watts > (hostMax.get(r.host) ?? -Infinity)) hostMax.set(r.host, r.watts);
        const sec = Math.floor(r.tMs / 1000);
        let bin = bins.get(sec);
        if (!bin) bins.set(sec, (bin = new Map()));
        const cur = bin.get(r.host);
        if (!cur || r.tMs >= cur.t) bin.set(r.host, { t: r.tMs, w: r.watts });
      }
      let total: number | null = null;
      for (const bin of bins.values()) {
        let sum = 0;
        for (const x of bin.values()) sum += x.w;
        if (total === null || sum > total) total = sum;
      }
      return { total, perHost: Object.fromEntries(hostMax) };
    }
    const rng = seededRng(7);
    for (let trial = 0; trial < 200; trial++) {
      const hosts = ['a', 'b', 'c'].slice(0, 1 + rng.int(3));
      const rs: { tMs: number; host: string; watts: number }[] = [];
      let t = 1_700_000_000_000 + rng.int(1000);
      for (let i = 0; i < 5 + rng.int(60); i++) {
        t += rng.int(3) === 0 ? 0 : rng.int(900);
        rs.push({ tMs: t, host: hosts[rng.int(hosts.length)], watts: 50 + rng.int(200) + rng.next() });
      }
      const mode = trial % 3;
      if (mode === 1)
        for (let i = rs.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [rs[i], rs[j]] = [rs[j], rs[i]];
        }
      if (mode === 2) {
        // ordered, then one host's readings appended again late (a second poller's file)
        const k = rng.int(rs.length);
        rs.push(...rs.slice(0, k).map((r) => ({ ...r, host: 'late', watts: r.watts + 1 })));
      }
      expect(peakPower(rs), `trial ${trial}`).toEqual(reference(rs));
    }
  });
});
