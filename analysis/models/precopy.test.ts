import { describe, expect, it } from 'vitest';
import { predictDuration } from './duration.ts';
import { dirtiedIn, ITERATION_S, simulatePrecopy, stopRuleConverges } from './precopy.ts';

const mbit = (m: number) => (m * 1e6) / 8 / 2 ** 20;

describe('QEMU-like pre-copy model', () => {
  it('the hot/cold curve: HPr up to HPd, then CPr, capped', () => {
    const p = { HPs: 6, HPd: 1, CPr: 0.4 };
    expect(dirtiedIn(p, 0.5)).toBeCloseTo(3);
    expect(dirtiedIn(p, 1)).toBeCloseTo(6);
    expect(dirtiedIn(p, 11)).toBeCloseTo(10);
    expect(dirtiedIn(p, 11, 8)).toBe(8);
    expect(dirtiedIn(p, 0)).toBe(0);
  });

  it('an idle guest takes setup + memory in use / bandwidth, one pass, nothing sent twice', () => {
    const r = simulatePrecopy({ HPs: 0, HPd: 1, CPr: 0 }, { bw: 10, mu: 80, D: 0.3, setup: 0.02, syncS: 0.05 });
    expect(r.converges).toBe(true);
    if (!r.converges) return;
    expect(r.d).toBeCloseTo(0.02 + 80 / 10, 9);
    expect(r.transferred).toBeCloseTo(80, 9);
    expect(r.passes).toHaveLength(1);
  });

  it('a hot set larger than bw x downtime limit never converges, although mVM says it does (DESIGN.md fact)', () => {
    // 6 MiB hot set rewritten every second, 60 Mbit/s at 95.6 % goodput, 300 ms limit: QEMU never converged here
    const p = { HPs: 6, HPd: 1, CPr: 0.39 };
    const c = { bw: mbit(60) * 0.956, mu: 100, D: 0.3, syncS: 0.02 };
    expect(predictDuration(p, c).converges).toBe(true);
    const r = simulatePrecopy(p, c);
    expect(r.converges).toBe(false);
    expect(stopRuleConverges(p, c)).toBe(false);
    // the same guest with a limit that holds the hot set converges; so would it without a sync cost
    expect(stopRuleConverges(p, { ...c, D: 1.2 })).toBe(true);
    expect(stopRuleConverges(p, { ...c, syncS: 0 })).toBe(true);
  });

  it('converges with a few shrinking passes, downtime within the limit', () => {
    const p = { HPs: 2, HPd: 0.5, CPr: 0.5 };
    const r = simulatePrecopy(p, { bw: mbit(100) * 0.956, mu: 100, D: 0.3 });
    expect(r.converges).toBe(true);
    if (!r.converges) return;
    expect(r.passes.length).toBeGreaterThan(1);
    for (let i = 2; i < r.passes.length - 1; i++) expect(r.passes[i].sent).toBeLessThan(r.passes[i - 1].sent);
    expect(r.downtime).toBeLessThanOrEqual(0.3 + 1e-9);
    expect(r.transferred).toBeGreaterThan(100);
    // time is what was sent over the bandwidth
    const syncs = r.passes.length - 1;
    expect(r.d).toBeCloseTo(r.transferred / (mbit(100) * 0.956) + syncs * 0.02, 6);
  });

  it('is slower at lower bandwidth, and the sync granularity is one iteration', () => {
    const p = { HPs: 1, HPd: 0.5, CPr: 0.3 };
    const ds = [50, 100, 200].map((m) => simulatePrecopy(p, { bw: mbit(m), mu: 90, D: 0.3 }));
    const d = ds.map((r) => (r.converges ? r.d : Infinity));
    expect(d[0]).toBeGreaterThan(d[1]);
    expect(d[1]).toBeGreaterThan(d[2]);
    expect(ITERATION_S).toBe(0.05);
  });
});
