import { describe, expect, it } from 'vitest';
import { UserError } from '../util/errors.ts';
import { buildPlanGraph, type PlanMove } from './graph.ts';
import { validatePlanSpec } from './load.ts';
import { PlanSpec, type PlanSpecInput } from './schema.ts';

const moves: PlanMove[] = [
  { vm: 'a1', from: 'h1', to: 'n1' },
  { vm: 'a2', from: 'h1', to: 'n1' },
  { vm: 'b1', from: 'h2', to: 'n2' },
  { vm: 'b2', from: 'h2', to: 'n2' },
];
const graph = (plan: PlanSpecInput, m: PlanMove[] = moves) => buildPlanGraph(m, PlanSpec.parse(plan), { file: 'p.yaml' });

function rejection(plan: PlanSpecInput, m: PlanMove[] = moves): string {
  try {
    graph(plan, m);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).message;
  }
  throw new Error('plan was accepted');
}

describe('plan graph', () => {
  it('places a boot just before the first migration into its host and a shutdown just after the last one out', () => {
    const g = graph({ kind: 'sequential', boot: true, shutdown: true });
    expect(g.actions.map((a) => a.id)).toEqual([
      'power-on:n1',
      'migrate:a1',
      'migrate:a2',
      'power-off:h1',
      'power-on:n2',
      'migrate:b1',
      'migrate:b2',
      'power-off:h2',
    ]);
    expect(g.actions.map((a) => a.order)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const a1 = g.actions.find((a) => a.id === 'migrate:a1')!;
    expect(a1.waits).toEqual([{ id: 'power-on:n1', why: 'boot' }]);
    expect(g.actions.find((a) => a.id === 'power-off:h1')!.waits.map((w) => w.id)).toEqual(['migrate:a1', 'migrate:a2']);
  });

  it('boots only hosts that receive and do not send, shuts down only hosts that send and do not receive', () => {
    const m: PlanMove[] = [
      { vm: 'x', from: 'h1', to: 'h2' },
      { vm: 'y', from: 'h2', to: 'h3' },
    ];
    const g = graph({ kind: 'parallel', boot: true, shutdown: true }, m);
    expect(g.actions.filter((a) => a.kind !== 'migrate').map((a) => a.id)).toEqual(['power-off:h1', 'power-on:h3']);
    expect(rejection({ kind: 'parallel', boot: ['h2'] }, m)).toBe(
      "p.yaml: migration.plan.boot[0]: host 'h2' is the source of a migration, so it is already on",
    );
    expect(rejection({ kind: 'parallel', shutdown: ['h3'] }, m)).toBe(
      "p.yaml: migration.plan.shutdown[0]: host 'h3' is the source of no migration in this plan",
    );
  });

  it('turns groups into precedence between consecutive groups', () => {
    const g = graph({ kind: 'groups', groups: [['a1', 'b1'], ['a2'], ['b2']] });
    const waits = (id: string) =>
      g.actions
        .find((a) => a.id === id)!
        .waits.map((w) => `${w.id}/${w.why}`)
        .sort();
    expect(waits('migrate:a1')).toEqual([]);
    expect(waits('migrate:a2')).toEqual(['migrate:a1/group', 'migrate:b1/group']);
    expect(waits('migrate:b2')).toEqual(['migrate:a2/group']);
  });

  it('merges overlapping sync lists into one unit', () => {
    const g = graph({
      kind: 'parallel',
      sync: [
        ['a1', 'b1'],
        ['b1', 'b2'],
      ],
    });
    expect(g.syncUnits).toEqual([['migrate:a1', 'migrate:b1', 'migrate:b2']]);
  });

  it.each<[string, PlanSpecInput, string]>([
    [
      'a cycle in after',
      {
        kind: 'parallel',
        after: [
          { vm: 'a1', after: 'b1' },
          { vm: 'b1', after: 'a1' },
        ],
      },
      'p.yaml: migration.plan.after[0], migration.plan.after[1]: precedence cycle',
    ],
    [
      'a cycle through groups',
      {
        kind: 'groups',
        groups: [
          ['a1', 'a2'],
          ['b1', 'b2'],
        ],
        after: [{ vm: 'a2', after: 'b2' }],
      },
      'p.yaml: migration.plan.after[0]: precedence cycle',
    ],
    [
      'an unknown vm in after',
      { kind: 'parallel', after: [{ vm: 'a1', after: 'zz' }] },
      "p.yaml: migration.plan.after[0].after: unknown vm 'zz'; vms moved by this plan are: a1, a2, b1, b2",
    ],
    [
      'a vm after itself',
      { kind: 'parallel', after: [{ vm: 'a1', after: ['a2', 'a1'] }] },
      "p.yaml: migration.plan.after[0].after[1]: vm 'a1' cannot wait for its own migration",
    ],
    [
      'sync members with a predecessor relation',
      { kind: 'parallel', sync: [['a1', 'b1']], after: [{ vm: 'b1', after: 'a1' }] },
      "p.yaml: migration.plan.sync[0]: 'migrate b1 h2 -> n2' waits for 'migrate a1 h1 -> n1' (after), so they cannot start at the same time",
    ],
    [
      'sync members in different groups',
      {
        kind: 'groups',
        groups: [
          ['a1', 'a2'],
          ['b1', 'b2'],
        ],
        sync: [['a1', 'b1']],
      },
      'p.yaml: migration.plan.sync[0]: ',
    ],
    [
      'a cycle between two sync units',
      {
        kind: 'parallel',
        sync: [
          ['a1', 'a2'],
          ['b1', 'b2'],
        ],
        after: [
          { vm: 'b1', after: 'a1' },
          { vm: 'a2', after: 'b2' },
        ],
      },
      'p.yaml: migration.plan.after[0], migration.plan.after[1]: precedence cycle: ',
    ],
    ['an unknown vm in sync', { kind: 'parallel', sync: [['a1', 'nope']] }, "p.yaml: migration.plan.sync[0][1]: unknown vm 'nope'"],
    [
      'a sync unit larger than k',
      { kind: 'capped', k: 2, sync: [['a1', 'a2', 'b1']] },
      "p.yaml: migration.plan.sync[0]: 3 migrations that start together do not fit a 'capped' plan with k = 2",
    ],
    [
      'a sync unit in a sequential plan',
      { kind: 'sequential', sync: [['a1', 'b1']] },
      "p.yaml: migration.plan.sync[0]: 2 migrations that start together do not fit a 'sequential' plan",
    ],
    [
      'a sync unit over k from one source',
      { kind: 'per_server', k: 1, sync: [['a1', 'a2']] },
      "p.yaml: migration.plan.sync[0]: 2 migrations that start together do not fit a 'per_server' plan with k = 1",
    ],
    [
      'a vm in no group',
      { kind: 'groups', groups: [['a1', 'a2'], ['b1']] },
      "p.yaml: migration.plan.groups: vm(s) 'b2' are moved but in no group",
    ],
    [
      'a vm in two groups',
      {
        kind: 'groups',
        groups: [
          ['a1', 'a2', 'b2'],
          ['b1', 'a1'],
        ],
      },
      "p.yaml: migration.plan.groups[1][1]: vm 'a1' is already in group 0",
    ],
  ])('rejects %s, naming the spec path', (_what, plan, expected) => {
    const msg = rejection(plan);
    expect(msg.startsWith(expected), msg).toBe(true);
    expect(msg.split('\n')).toHaveLength(1);
  });

  it('rejects k < 1 even when the plan did not come through the schema', () => {
    expect(() => buildPlanGraph(moves, { ...PlanSpec.parse({ kind: 'capped', k: 1 }), k: 0 }, { file: 'p.yaml' })).toThrow(
      'p.yaml: migration.plan.k: expected an integer >= 1, got 0',
    );
  });

  it('rejects moving a vm twice or onto its own host', () => {
    const msg = rejection({ kind: 'parallel' }, [...moves, { vm: 'a1', from: 'n1', to: 'n1' }]);
    expect(msg).toContain("migration.moves[4].vm: vm 'a1' is moved twice");
    expect(msg).toContain("migration.moves[4].to: vm 'a1' is already on host 'n1'");
  });
});

describe('plan schema', () => {
  it.each<[unknown, string]>([
    [{ kind: 'capped' }, "p.yaml: migration.plan.k: missing; a 'capped' plan needs k"],
    [{ kind: 'per_server', k: 0 }, 'p.yaml: migration.plan.k: expected a number of concurrent migrations (an integer >= 1)'],
    [{ kind: 'parallel', k: 2 }, "p.yaml: migration.plan.k: k applies to 'capped' and 'per_server' plans, not 'parallel'"],
    [{ kind: 'groups' }, "p.yaml: migration.plan.groups: missing; a 'groups' plan needs groups"],
    [{ kind: 'k-by-k' }, "p.yaml: migration.plan.kind: expected a plan kind: 'sequential', 'parallel', 'capped', 'per_server' or 'groups'"],
    [{ kind: 'parallel', sync: [['a1']] }, 'p.yaml: migration.plan.sync[0]: expected at least two vms that start together'],
    [{ kind: 'parallel', colour: 'red' }, "p.yaml: migration.plan.colour: unknown key 'colour'"],
    [{ kind: 'parallel', after: [{ vm: 'a', before: 'b' }] }, 'p.yaml: 2 problems'],
  ])('%j is rejected with its path', (raw, expected) => {
    expect(() => validatePlanSpec(raw, 'p.yaml')).toThrow(expected);
  });

  it('defaults to a sequential plan without constraints', () => {
    expect(validatePlanSpec(undefined)).toEqual({ kind: 'sequential', after: [], sync: [], boot: false, shutdown: false });
  });
});
