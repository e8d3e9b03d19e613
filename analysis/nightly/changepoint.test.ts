import { describe, expect, it } from 'vitest';
import { seededRng } from '../../harness/util/rng.ts';
import { detectSteps, normalUpper, STEP_DEFAULTS } from './changepoint.ts';
import { historyChanges, unjudged } from './evaluate.ts';
import type { Night, NightEnv } from './history.ts';

/** Nightly medians around `level` with a relative noise of `cv` (log-normal), times `step` from night `at` on. */
function series(seed: number, n: number, o: { cv?: number; at?: number; step?: number; level?: number } = {}): number[] {
  const rng = seededRng(seed);
  const cv = o.cv ?? 0.05;
  return Array.from(
    { length: n },
    (_, i) => (o.level ?? 12_000) * Math.exp(cv * rng.normal()) * (o.at !== undefined && i >= o.at ? (o.step ?? 1) : 1),
  );
}

describe('step detection over nightly medians', () => {
  it('normal quantile by bisection', () => {
    expect(normalUpper(0.025)).toBeCloseTo(1.959964, 4);
    expect(normalUpper(0.005)).toBeCloseTo(2.575829, 4);
  });

  it('finds a +20 % step at the right night with its size (5 % CV noise)', () => {
    const steps = detectSteps(series(7, 60, { at: 40, step: 1.2 }));
    expect(steps).toHaveLength(1);
    expect(steps[0].index).toBe(40);
    expect(steps[0].rel).toBeGreaterThan(0.12);
    expect(steps[0].rel).toBeLessThan(0.3);
  });

  it('locates +20 % and -20 % steps over 40 seeded histories: exact in nearly all, never more than one night off', () => {
    let exact = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const up = seed % 2 === 0;
      const steps = detectSteps(series(seed, 60, { at: 25, step: up ? 1.2 : 0.8 }));
      expect(steps.length, `seed ${seed}`).toBe(1);
      expect(Math.abs(steps[0].index - 25), `seed ${seed}`).toBeLessThanOrEqual(1);
      expect(Math.sign(steps[0].rel)).toBe(up ? 1 : -1);
      if (steps[0].index === 25) exact++;
    }
    expect(exact).toBeGreaterThanOrEqual(36);
  });

  it('finds two steps (a slowdown, later fixed) and a step 3 nights before the end', () => {
    const xs = series(3, 50, { at: 15, step: 1.3 }).map((x, i) => (i >= 35 ? x / 1.3 : x));
    expect(detectSteps(xs).map((s) => s.index)).toEqual([15, 35]);
    const late = detectSteps(series(4, 30, { at: 27, step: 1.4 }));
    expect(late.map((s) => s.index)).toEqual([27]);
  });

  it('no false alarm over 100 nights of 5 % CV noise, in each of 200 seeded histories (20,000 nights)', () => {
    let alarms = 0;
    for (let seed = 1; seed <= 200; seed++) alarms += detectSteps(series(1000 + seed, 100)).length;
    expect(alarms).toBe(0);
  });

  it('odd nights (two in a row half again slower, every 12 nights) raise no alarm: they are clipped to the running median', () => {
    let alarms = 0;
    for (let seed = 1; seed <= 50; seed++)
      alarms += detectSteps(series(2000 + seed, 100).map((x, i) => (i % 12 === 5 || i % 12 === 6 ? x * 1.5 : x))).length;
    expect(alarms).toBe(0); // 28 alarms without the clipping
  });

  it('a real but small 2 % step on a quiet machine is significant yet below the effect threshold: not a page', () => {
    const xs = series(11, 100, { cv: 0.005, at: 50, step: 1.02 });
    expect(detectSteps(xs)).toEqual([]);
    expect(detectSteps(xs, { threshold: 0.01 }).map((s) => s.index)).toEqual([50]); // it is there, just under the bar
  });

  it('copes with short, flat and non-positive series', () => {
    expect(detectSteps([1, 2, 3])).toEqual([]);
    expect(detectSteps([5, 5, 5, 5, 5, 5, 5])).toEqual([]);
    expect(detectSteps([5, 5, 5, 5, 9, 9, 9, 9]).map((s) => s.index)).toEqual([4]);
    expect(detectSteps([0, 0, 0, 0, 10, 10, 10, 10]).map((s) => s.index)).toEqual([4]);
    expect(STEP_DEFAULTS.minSegment).toBe(3);
  });
});

const ENV: NightEnv = {
  harness_commit: 'abc',
  harness_version: '0.1.0',
  qemu_version: '9.0.2',
  host_kernel: '6.1.0-28-amd64',
  guest_kernel: '6.1.0',
  accelerator: 'tcg',
  hosts: ['r1-h1', 'r1-h2'],
  spec_hash: 'h1',
};

function night(i: number, totalMs: number, env: Partial<NightEnv> = {}): Night {
  const m = { n: 6, median: totalMs, q1: totalMs * 0.98, q3: totalMs * 1.02, min: totalMs * 0.95, max: totalMs * 1.05 };
  return {
    id: `night${String(i).padStart(3, '0')}`,
    run_dir: null,
    date: new Date(Date.UTC(2026, 9, 1 + i)).toISOString(),
    spec_file: null,
    env: { ...ENV, ...env },
    ...unjudged(),
    treatments: [
      {
        key: '[]',
        scenario: '(single treatment)',
        levels: {},
        failures: { n: 6, failed: 0, cancelled: 0, reasons: {} },
        metrics: { total_ms: m },
      },
    ],
  };
}

describe('change detection over a history of nights', () => {
  it('labels a step that coincides with an environment change (QEMU upgrade at night 30)', () => {
    const xs = series(21, 50, { at: 30, step: 1.25 });
    const nights = xs.map((x, i) => night(i, x, i >= 30 ? { qemu_version: '9.1.0', harness_commit: 'def' } : {}));
    const ch = historyChanges(nights, ['total_ms']);
    expect(ch).toHaveLength(1);
    expect(ch[0]).toMatchObject({ metric: 'total_ms', night: 'night030', scenario: '(single treatment)' });
    expect(ch[0].rel).toBeGreaterThan(0.15);
    expect(ch[0].coincides).toEqual(['QEMU 9.0.2 -> 9.1.0']); // a new harness commit alone is not an environment change
  });

  it('an environment change without a shift raises nothing; a shift without one is unlabelled', () => {
    const calm = series(22, 50).map((x, i) => night(i, x, i >= 20 ? { host_kernel: '6.12.0', hosts: ['r1-h1', 'r1-h3'] } : {}));
    expect(historyChanges(calm, ['total_ms'])).toEqual([]);
    const shifted = series(23, 50, { at: 20, step: 0.7 }).map((x, i) => night(i, x));
    const ch = historyChanges(shifted, ['total_ms']);
    expect(ch.map((c) => [c.night, c.coincides])).toEqual([['night020', []]]);
  });

  it('leaves broken nights out of the series', () => {
    const xs = series(24, 40);
    const nights = xs.map((x, i) => night(i, i === 20 ? x * 5 : x));
    nights[20].verdict = 'broken';
    expect(historyChanges(nights, ['total_ms'])).toEqual([]);
  });
});
