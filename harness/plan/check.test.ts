import { describe, expect, it } from 'vitest';
import { scheduleViolations } from './check.ts';
import { buildPlanGraph } from './graph.ts';
import { PlanSpec } from './schema.ts';

describe('scheduleViolations', () => {
  const moves = [
    { vm: 'a', from: 'h1', to: 'h3' },
    { vm: 'b', from: 'h1', to: 'h3' },
    { vm: 'c', from: 'h2', to: 'h3' },
  ];
  it('finds early starts, split sync units and exceeded limits', () => {
    const g = buildPlanGraph(moves, PlanSpec.parse({ kind: 'per_server', k: 1, after: [{ vm: 'c', after: 'a' }], sync: [['b', 'c']] }));
    const v = scheduleViolations(g, [
      { id: 'migrate:a', start: 0, end: 10 },
      { id: 'migrate:b', start: 5, end: 20 },
      { id: 'migrate:c', start: 8, end: 20 },
    ]);
    expect(v).toEqual([
      'migrate:c started at 8 before migrate:a (after) ended at 10',
      'sync unit migrate:b, migrate:c started at 5, 8',
      'limits exceeded at 5: migrate:a, migrate:b ran together',
      'limits exceeded at 8: migrate:a, migrate:b, migrate:c ran together',
    ]);
  });
  it('accepts a valid schedule and ignores skipped actions', () => {
    const g = buildPlanGraph(moves, PlanSpec.parse({ kind: 'sequential' }));
    expect(
      scheduleViolations(g, [
        { id: 'migrate:a', start: 0, end: 10 },
        { id: 'migrate:b', start: 10, end: 20 },
        { id: 'migrate:c', start: null, end: null },
      ]),
    ).toEqual([]);
  });
});
