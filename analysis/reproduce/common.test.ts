import { describe, expect, it } from 'vitest';
import { condition, greater, labelFields, noEffect, welch } from './common.ts';
import { run } from './fixture.test-helpers.ts';

describe('welch', () => {
  it('gives the difference of means and a CI that contains it', () => {
    const w = welch([10, 11, 12, 13], [1, 2, 3, 4])!;
    expect(w.diff).toBeCloseTo(9);
    expect(w.low).toBeLessThan(9);
    expect(w.high).toBeGreaterThan(9);
    expect(w.pGreater).toBeLessThan(0.001);
  });
  it('needs two values a side', () => {
    expect(welch([1], [1, 2])).toBeNull();
  });
});

describe('noEffect (equivalence)', () => {
  it('holds when the CI of the difference lies inside the margin', () => {
    expect(noEffect([100, 101, 99, 100], [100, 100.5, 99.5, 100], 5).verdict).toBe('holds');
  });
  it('does not hold when the difference is clear and beyond the margin', () => {
    expect(noEffect([150, 151, 149], [100, 101, 99], 5).verdict).toBe('does not hold');
  });
  it('is inconclusive when the CI is wider than the margin', () => {
    expect(noEffect([80, 120, 100], [100, 60, 140], 5).verdict).toBe('inconclusive');
  });
});

describe('greater', () => {
  it('holds for a clear difference and not for equal samples', () => {
    expect(greater([20, 21, 22], [10, 11, 12]).holds).toBe(true);
    expect(greater([10, 11, 12], [10, 11, 12]).holds).toBe(false);
    expect(greater([1], [2]).holds).toBeNull();
  });
});

describe('labelFields and condition', () => {
  it('splits a workload label', () => {
    expect(labelFields('dirty wset=40MiB period=10ms bpc=1 fill=100%')).toEqual({
      kind: 'dirty',
      fields: { wset: '40MiB', period: '10ms', bpc: '1', fill: '100%' },
    });
  });
  it("reads a factor level, else the spec's own value", () => {
    const r = run('x', [], {
      spec: { testbed: { shaping: [{ link: 'r1-h1/mig', rate: '100mbit', delay: '0ms' }] } },
      treatments: [{ id: 't1', levels: { 'testbed.shaping[0].delay': '25ms', 'vms[0].workload': '{"kind":"idle"}' } }],
    });
    expect(condition(r, 't1', 'testbed.shaping[0].delay')).toBe('25ms');
    expect(condition(r, 't1', 'testbed.shaping[0].rate')).toBe('100mbit');
    expect(condition(r, 't1', 'vms[0].workload')).toEqual({ kind: 'idle' });
  });
});
