import { describe, expect, it } from 'vitest';
import { seededRng } from '../../harness/util/rng.ts';
import { fitEnergy, fitEnergyPoints } from './energy.ts';
import { fitHotColdCurve, fitHotColdFromDurations, type CurvePoint } from './hotcold.ts';
import { predictDuration, mbitToMiBps } from './duration.ts';
import { normalizeMigration } from '../rundir.ts';
import { nelderMead } from '../stats/neldermead.ts';

describe('energy fit', () => {
  it('recovers alpha and beta from noisy synthetic migrations, CI covers the truth', () => {
    const rng = seededRng(7);
    const alpha = 0.512,
      beta = 20.165;
    const pts = Array.from({ length: 200 }, (_, i) => {
      const mb = 50 + rng.next() * 950;
      return { id: `m${i}`, mb, energy: alpha * mb + beta + rng.normal() * 5 };
    });
    const f = fitEnergyPoints('all', pts, { seed: 1 })!;
    expect(Math.abs(f.alpha - alpha)).toBeLessThan(0.01); // 2 %
    expect(Math.abs(f.beta - beta)).toBeLessThan(2.5); // ~12 %, noise sd 5 J
    expect(f.r2).toBeGreaterThan(0.99);
    expect(f.alphaCi.low).toBeLessThan(alpha);
    expect(f.alphaCi.high).toBeGreaterThan(alpha);
    expect(f.betaCi.low).toBeLessThan(beta);
    expect(f.betaCi.high).toBeGreaterThan(beta);
    expect(f.residuals).toHaveLength(200);
    // Same seed, same interval: reproducible.
    expect(fitEnergyPoints('all', pts, { seed: 1 })!.alphaCi).toEqual(f.alphaCi);
  });
  it('says so when no energy was measured, and groups per workload', () => {
    const base = { status: 'completed', transferred_bytes: 1e8, workload: 'a' };
    const none = fitEnergy([normalizeMigration({ ...base, energy_j: null }, 1)]);
    expect(none.fits).toHaveLength(0);
    expect(none.note).toMatch(/no power source/);
    const ms = [1, 2, 3, 4, 5, 6].map((k) =>
      normalizeMigration(
        { ...base, id: `m${k}`, workload: k % 2 ? 'a' : 'b', transferred_bytes: k * 1e8, energy_j: (k % 2 ? 1 : 2) * k * 100 + 10 },
        k,
      ),
    );
    const per = fitEnergy(ms, 'per-workload');
    expect(per.fits.map((f) => f.group)).toEqual(['a', 'b']);
    expect(per.fits[0].alpha).toBeCloseTo(1, 9);
    expect(per.fits[1].alpha).toBeCloseTo(2, 9);
    expect(per.fits[1].beta).toBeCloseTo(10, 6);
  });
});

describe('hot/cold fit from a D(t) curve', () => {
  it('recovers HPs, HPd, CPr within 5 %', () => {
    const rng = seededRng(11);
    const HPs = 48,
      HPd = 1.6,
      CPr = 3.5;
    const pts: CurvePoint[] = [];
    for (let t = 0.1; t <= 10; t += 0.1) {
      const d = t < HPd ? (HPs / HPd) * t : HPs + CPr * (t - HPd);
      pts.push({ t, d: d * (1 + 0.01 * rng.normal()) });
    }
    const f = fitHotColdCurve(pts)!;
    expect(Math.abs(f.HPs - HPs) / HPs).toBeLessThan(0.05);
    expect(Math.abs(f.HPd - HPd) / HPd).toBeLessThan(0.05);
    expect(Math.abs(f.CPr - CPr) / CPr).toBeLessThan(0.05);
    expect(f.HPr).toBeCloseTo(f.HPs / f.HPd, 9);
    expect(f.r2).toBeGreaterThan(0.99);
  });
  it('returns null with too few windows', () => {
    expect(
      fitHotColdCurve([
        { t: 1, d: 1 },
        { t: 2, d: 2 },
      ]),
    ).toBeNull();
  });
});

describe('duration model', () => {
  const p = { HPs: 40, HPd: 2, CPr: 2 }; // HPr = 20 MiB/s
  it('computes the mVM formula by hand', () => {
    const r = predictDuration(p, { bw: 50, mu: 500, D: 0.3 });
    if (!r.converges) throw new Error('expected convergence');
    const dmin = 10,
      CPs = (10 - 2) * 2,
      dCP = (40 + CPs) / 48,
      dHP = (40 / 50) * (20 / 30);
    expect(r.d).toBeCloseTo(dmin + dCP + dHP + 0.3, 12);
  });
  it('says no convergence when bw <= HPr', () => {
    expect(predictDuration(p, { bw: 20, mu: 500, D: 0.3 }).converges).toBe(false);
    expect(predictDuration(p, { bw: 19, mu: 500, D: 0.3 }).converges).toBe(false);
  });
  it('converts Mbit/s to MiB/s', () => {
    expect(mbitToMiBps(8 * 1.048576)).toBeCloseTo(1, 12);
  });
  it('fits HPs, HPd, CPr back from durations at several bandwidths (within 15 %)', () => {
    const rng = seededRng(5);
    const truth = { HPs: 60, HPd: 1.5, CPr: 4 };
    const obs = [];
    for (const mbit of [450, 600, 800, 1000, 1500, 2000]) {
      for (let r = 0; r < 10; r++) {
        const c = { bw: mbitToMiBps(mbit), mu: 1024, D: 0.3 };
        const pr = predictDuration(truth, c);
        if (!pr.converges) throw new Error('bad truth');
        obs.push({ ...c, d: pr.d * (1 + 0.005 * rng.normal()) });
      }
    }
    const f = fitHotColdFromDurations(obs)!;
    expect(f.method).toBe('durations');
    // Predictions reproduce the observations closely, the parameters approximately.
    for (const o of obs) {
      const pr = predictDuration(f, o);
      expect(pr.converges && Math.abs(pr.d - o.d) / o.d).toBeLessThan(0.03);
    }
    expect(Math.abs(f.HPs - truth.HPs) / truth.HPs).toBeLessThan(0.15);
    expect(Math.abs(f.CPr - truth.CPr) / truth.CPr).toBeLessThan(0.15);
  });
  it('predicts each distinct (bw, mu, D) once per evaluation and still gives, bit for bit, the fit of one prediction per observation', () => {
    // the fit as it was written before: every observation predicted in the cost
    const reference = (obs: { bw: number; mu: number; D: number; d: number }[]) => {
      const cost = (x: number[]) => {
        const p = { HPs: Math.exp(x[0]), HPd: Math.exp(x[1]), CPr: Math.exp(x[2]) };
        let s = 0;
        for (const o of obs) {
          const r = predictDuration(p, o);
          s += r.converges ? ((r.d - o.d) / o.d) ** 2 : 1e3;
        }
        return s;
      };
      const minBw = Math.min(...obs.map((o) => o.bw));
      let best: { x: number[]; value: number } | null = null;
      for (const fs of [0.05, 0.2, 0.5])
        for (const hd of [0.2, 1, 5])
          for (const cf of [0.01, 0.1, 0.3]) {
            const r = nelderMead(cost, [Math.log(fs * obs[0].mu), Math.log(hd), Math.log(cf * minBw)], {
              step: [1, 1, 1],
              maxIter: 3000,
              tol: 1e-12,
            });
            if (!best || r.value < best.value) best = r;
          }
      return best!.x.map(Math.exp);
    };
    const rng = seededRng(11);
    const truth = { HPs: 30, HPd: 0.8, CPr: 3 };
    const obs = [];
    // repetitions of a few conditions, in an interleaved order, with two memory sizes and downtime limits,
    // and rates low enough that some trial parameters do not converge
    for (let r = 0; r < 6; r++)
      for (const mbit of [100, 200, 400, 800])
        for (const [mu, D] of [
          [256, 0.3],
          [1024, 0.1],
        ]) {
          const c = { bw: mbitToMiBps(mbit), mu, D };
          const pr = predictDuration(truth, c);
          if (pr.converges) obs.push({ ...c, d: pr.d * (1 + 0.02 * rng.normal()) });
        }
    expect(new Set(obs.map((o) => `${o.bw} ${o.mu}`)).size).toBeLessThan(obs.length / 3);
    const f = fitHotColdFromDurations(obs)!;
    expect([f.HPs, f.HPd, f.CPr]).toEqual(reference(obs));
  });
});
