import { UserError } from '../util/errors.ts';
import { fits, limitsOf, type Limits } from './limits.ts';
import type { PlanSpecT } from './schema.ts';

/**
 * Moves + plan -> the action graph: migrations and host power actions with
 * their predecessors, sync units and concurrency limits. Pure. Every
 * impossible plan is rejected here with a UserError naming the spec path,
 * so the executor and the simulator can assume a plan that always finishes.
 */

/** One VM to move, with its current host resolved. */
export interface PlanMove {
  vm: string;
  from: string;
  to: string;
}

export type ActionKind = 'migrate' | 'power-on' | 'power-off';

/** Why an action waits for another. */
export type WaitReason = 'after' | 'group' | 'boot' | 'shutdown';

export interface Wait {
  id: string;
  why: WaitReason;
}

interface ActionBase {
  /** 'migrate:<vm>', 'power-on:<host>', 'power-off:<host>'. */
  id: string;
  /** Priority: position in spec order, power actions next to their first/last migration. */
  order: number;
  /** Direct predecessors: this action starts only after all of them ended ok. */
  waits: Wait[];
  /** Index into PlanGraph.syncUnits when the action starts together with others. */
  sync: number | null;
}

export interface MigrateAction extends ActionBase {
  kind: 'migrate';
  vm: string;
  from: string;
  to: string;
}

export interface PowerAction extends ActionBase {
  kind: 'power-on' | 'power-off';
  host: string;
}

export type PlanAction = MigrateAction | PowerAction;

export interface PlanGraph {
  plan: PlanSpecT;
  limits: Limits;
  /** In priority order (`order` = index). */
  actions: PlanAction[];
  /** Groups of action ids that start at the same time (from `sync`, merged when they overlap). */
  syncUnits: string[][];
}

/** Where the plan came from, for error messages. */
export interface PlanSource {
  file?: string;
  /** Path of the plan inside the spec; default 'migration.plan'. */
  planPath?: string;
  /** Path of the moves inside the spec; default 'migration.moves'. */
  movesPath?: string;
}

export const migrateId = (vm: string) => `migrate:${vm}`;
export const powerOnId = (host: string) => `power-on:${host}`;
export const powerOffId = (host: string) => `power-off:${host}`;

export function describeAction(a: PlanAction): string {
  return a.kind === 'migrate' ? `migrate ${a.vm} ${a.from} -> ${a.to}` : `${a.kind} ${a.host}`;
}

class Issues {
  private readonly lines: string[] = [];
  constructor(private readonly file: string | undefined) {}
  add(path: string, message: string): void {
    this.lines.push(`${this.file ? `${this.file}: ` : ''}${path}: ${message}`);
  }
  throwIfAny(): void {
    if (this.lines.length === 0) return;
    const head = this.file ? `${this.file}: ${this.lines.length} problems` : `${this.lines.length} problems in the plan`;
    throw new UserError(this.lines.length === 1 ? this.lines[0] : `${head}\n  ${this.lines.join('\n  ')}`);
  }
}

/** Hosts a boot/shutdown selection names: `true` = all eligible ones, in move order. */
function selectHosts(
  sel: boolean | string[],
  eligible: string[],
  role: 'boot' | 'shutdown',
  moves: PlanMove[],
  path: string,
  issues: Issues,
): string[] {
  if (sel === false) return [];
  if (sel === true) return eligible;
  const dsts = new Set(moves.map((m) => m.to));
  const srcs = new Set(moves.map((m) => m.from));
  sel.forEach((h, i) => {
    if (role === 'boot') {
      if (!dsts.has(h)) issues.add(`${path}[${i}]`, `host '${h}' receives no migration in this plan, so there is nothing to boot it for`);
      else if (srcs.has(h)) issues.add(`${path}[${i}]`, `host '${h}' is the source of a migration, so it is already on`);
    } else {
      if (!srcs.has(h)) issues.add(`${path}[${i}]`, `host '${h}' is the source of no migration in this plan`);
      else if (dsts.has(h)) issues.add(`${path}[${i}]`, `host '${h}' receives migrations, so it cannot be shut down`);
    }
    if (sel.indexOf(h) !== i) issues.add(`${path}[${i}]`, `host '${h}' is listed twice`);
  });
  return [...new Set(sel)];
}

export function buildPlanGraph(moves: readonly PlanMove[], plan: PlanSpecT, source: PlanSource = {}): PlanGraph {
  const P = source.planPath ?? 'migration.plan';
  const M = source.movesPath ?? 'migration.moves';
  const issues = new Issues(source.file);

  // --- moves and limits
  if (moves.length === 0) issues.add(M, 'expected at least one move');
  const moveOf = new Map<string, PlanMove>();
  moves.forEach((m, i) => {
    if (moveOf.has(m.vm)) issues.add(`${M}[${i}].vm`, `vm '${m.vm}' is moved twice; a plan moves each vm once`);
    else moveOf.set(m.vm, m);
    if (m.from === m.to) issues.add(`${M}[${i}].to`, `vm '${m.vm}' is already on host '${m.to}'`);
  });
  for (const key of ['k', 'dst_k'] as const) {
    const v = plan[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) issues.add(`${P}.${key}`, `expected an integer >= 1, got ${v}`);
  }
  if ((plan.kind === 'capped' || plan.kind === 'per_server') && plan.k === undefined)
    issues.add(`${P}.k`, `missing; a '${plan.kind}' plan needs k`);
  const knownVm = (vm: string, path: string): boolean => {
    if (moveOf.has(vm)) return true;
    const names = [...moveOf.keys()];
    issues.add(path, `unknown vm '${vm}'; vms moved by this plan are: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}`);
    return false;
  };

  // --- power actions: boot only pure destinations, shut down only pure sources
  const srcs = new Set(moves.map((m) => m.from));
  const dsts = new Set(moves.map((m) => m.to));
  const boots = selectHosts(
    plan.boot,
    [...new Set(moves.map((m) => m.to))].filter((h) => !srcs.has(h)),
    'boot',
    [...moves],
    `${P}.boot`,
    issues,
  );
  const shutdowns = selectHosts(
    plan.shutdown,
    [...new Set(moves.map((m) => m.from))].filter((h) => !dsts.has(h)),
    'shutdown',
    [...moves],
    `${P}.shutdown`,
    issues,
  );
  issues.throwIfAny();

  // --- actions in priority order: a boot just before the first migration into
  // its host, a shutdown just after the last one out of it
  const actions: PlanAction[] = [];
  const byId = new Map<string, PlanAction>();
  const push = (a: PlanAction) => {
    a.order = actions.length;
    actions.push(a);
    byId.set(a.id, a);
  };
  const lastOut = new Map<string, number>();
  moves.forEach((m, i) => lastOut.set(m.from, i));
  const bootSet = new Set(boots);
  const shutdownSet = new Set(shutdowns);
  moves.forEach((m, i) => {
    if (bootSet.has(m.to) && !byId.has(powerOnId(m.to)))
      push({ id: powerOnId(m.to), kind: 'power-on', host: m.to, order: 0, waits: [], sync: null });
    push({ id: migrateId(m.vm), kind: 'migrate', vm: m.vm, from: m.from, to: m.to, order: 0, waits: [], sync: null });
    if (shutdownSet.has(m.from) && lastOut.get(m.from) === i)
      push({ id: powerOffId(m.from), kind: 'power-off', host: m.from, order: 0, waits: [], sync: null });
  });
  const wait = (id: string, on: string, why: WaitReason) => {
    const a = byId.get(id)!;
    if (!a.waits.some((w) => w.id === on)) a.waits.push({ id: on, why });
  };
  for (const m of moves) {
    if (bootSet.has(m.to)) wait(migrateId(m.vm), powerOnId(m.to), 'boot');
    if (shutdownSet.has(m.from)) wait(powerOffId(m.from), migrateId(m.vm), 'shutdown');
  }

  // --- groups
  if (plan.kind === 'groups' && plan.groups) {
    const groupOf = new Map<string, number>();
    plan.groups.forEach((g, gi) =>
      g.forEach((vm, j) => {
        const path = `${P}.groups[${gi}][${j}]`;
        if (!knownVm(vm, path)) return;
        const prev = groupOf.get(vm);
        if (prev !== undefined) issues.add(path, `vm '${vm}' is already in group ${prev}`);
        else groupOf.set(vm, gi);
      }),
    );
    const missing = [...moveOf.keys()].filter((vm) => !groupOf.has(vm));
    if (missing.length)
      issues.add(`${P}.groups`, `vm(s) ${missing.map((v) => `'${v}'`).join(', ')} are moved but in no group; add them to a group`);
    for (let gi = 1; gi < plan.groups.length; gi++) {
      for (const vm of new Set(plan.groups[gi])) {
        if (!moveOf.has(vm)) continue;
        for (const prev of new Set(plan.groups[gi - 1])) if (moveOf.has(prev)) wait(migrateId(vm), migrateId(prev), 'group');
      }
    }
  }

  // --- after
  const afterPath = new Map<string, string>(); // "B<-A" -> spec path, to name cycles
  plan.after.forEach((c, i) => {
    const okVm = knownVm(c.vm, `${P}.after[${i}].vm`);
    const list = typeof c.after === 'string' ? [c.after] : c.after;
    list.forEach((a, j) => {
      const path = typeof c.after === 'string' ? `${P}.after[${i}].after` : `${P}.after[${i}].after[${j}]`;
      if (!knownVm(a, path) || !okVm) return;
      if (a === c.vm) {
        issues.add(path, `vm '${a}' cannot wait for its own migration`);
        return;
      }
      wait(migrateId(c.vm), migrateId(a), 'after');
      afterPath.set(`${c.vm}<-${a}`, `${P}.after[${i}]`);
    });
  });

  // --- sync: merge overlapping lists into units (union-find over vms)
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  const syncPathOf = new Map<string, number>();
  plan.sync.forEach((list, i) =>
    list.forEach((vm, j) => {
      if (!knownVm(vm, `${P}.sync[${i}][${j}]`)) return;
      if (!parent.has(vm)) parent.set(vm, vm);
      if (!syncPathOf.has(vm)) syncPathOf.set(vm, i);
      const first = list.find((v) => moveOf.has(v));
      if (first !== undefined && first !== vm) parent.set(find(vm), find(first));
    }),
  );
  issues.throwIfAny();

  const unitMembers = new Map<string, string[]>();
  for (const a of actions) {
    if (a.kind !== 'migrate' || !parent.has(a.vm)) continue;
    const root = find(a.vm);
    unitMembers.set(root, [...(unitMembers.get(root) ?? []), a.id]);
  }
  const syncUnits = [...unitMembers.values()].filter((u) => u.length > 1);
  syncUnits.forEach((u, i) => u.forEach((id) => (byId.get(id)!.sync = i)));
  const syncPath = (unit: number) => {
    const vm = (byId.get(syncUnits[unit][0]) as MigrateAction).vm;
    return `${P}.sync[${syncPathOf.get(vm)}]`;
  };

  // --- cycles, on the graph with each sync unit contracted to one node
  const nodeOf = (a: PlanAction) => (a.sync === null ? a.id : `sync#${a.sync}`);
  const succ = new Map<string, Set<string>>();
  for (const a of actions) {
    for (const w of a.waits) {
      const from = nodeOf(byId.get(w.id)!);
      const to = nodeOf(a);
      if (from === to) {
        issues.add(
          syncPath(a.sync!),
          `'${describeAction(a)}' waits for '${describeAction(byId.get(w.id)!)}' (${w.why}), so they cannot start at the same time`,
        );
        continue;
      }
      if (!succ.has(from)) succ.set(from, new Set());
      succ.get(from)!.add(to);
    }
  }
  issues.throwIfAny();
  const cycle = findCycle([...new Set(actions.map(nodeOf))], succ);
  if (cycle) {
    const paths = new Set<string>();
    const names: string[] = [];
    for (const node of cycle) {
      names.push(
        node.startsWith('sync#')
          ? `sync(${syncUnits[Number(node.slice(5))].map((id) => id.slice(8)).join(', ')})`
          : node.replace(/^migrate:/, ''),
      );
    }
    // name the `after` entries on the cycle: those are what the user can change
    for (let i = 0; i < cycle.length; i++) {
      const from = cycle[i];
      const to = cycle[(i + 1) % cycle.length];
      const vmsOf = (n: string) => (n.startsWith('sync#') ? syncUnits[Number(n.slice(5))] : [n]).map((id) => id.slice(8));
      for (const b of vmsOf(to))
        for (const a of vmsOf(from)) {
          const p = afterPath.get(`${b}<-${a}`);
          if (p) paths.add(p);
        }
    }
    const where = paths.size ? [...paths].sort().join(', ') : `${P}.after`;
    issues.add(where, `precedence cycle: ${[...names, names[0]].join(' -> ')}; no migration of it could ever start`);
  }

  // --- sync units must fit the concurrency limits, or they could never start
  const limits = limitsOf(plan);
  syncUnits.forEach((u, i) => {
    if (
      !fits(
        limits,
        [],
        u.map((id) => byId.get(id)!),
      )
    ) {
      issues.add(
        syncPath(i),
        `${u.length} migrations that start together do not fit a '${plan.kind}' plan${plan.k !== undefined ? ` with k = ${plan.k}` : ''}${plan.dst_k !== undefined ? `, dst_k = ${plan.dst_k}` : ''}; raise k or split the sync list`,
      );
    }
  });
  issues.throwIfAny();
  return { plan, limits, actions, syncUnits };
}

/** A cycle in a directed graph as a list of nodes (first not repeated), or null. */
function findCycle(nodes: string[], succ: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 on stack, 2 done
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const m of succ.get(n) ?? []) {
      const s = state.get(m);
      if (s === 1) return stack.slice(stack.indexOf(m));
      if (s === undefined) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of nodes) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return null;
}
