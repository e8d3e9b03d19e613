import type { PlanSpecT } from './schema.ts';

/**
 * How many actions a plan lets run at once. Power actions count only
 * against `actions` (a sequential plan does one thing at a time, as in
 * Kherbache et al.); the other caps are about migrations.
 */
export interface Limits {
  /** All actions, power included (sequential: 1). */
  actions: number | null;
  /** Migrations overall (capped k). */
  migrations: number | null;
  /** Migrations per source host (per_server k). */
  perSource: number | null;
  /** Incoming migrations per destination host (per_server dst_k). */
  perDestination: number | null;
}

export function limitsOf(plan: PlanSpecT): Limits {
  const none: Limits = { actions: null, migrations: null, perSource: null, perDestination: null };
  switch (plan.kind) {
    case 'sequential':
      return { ...none, actions: 1 };
    case 'capped':
      return { ...none, migrations: plan.k ?? null };
    case 'per_server':
      return { ...none, perSource: plan.k ?? null, perDestination: plan.dst_k ?? null };
    case 'parallel':
    case 'groups':
      return none;
  }
}

/** What the limits look at in an action. */
export interface Countable {
  kind: 'migrate' | 'power-on' | 'power-off';
  from?: string;
  to?: string;
}

/** Whether `adding` can start while `running` run, under `limits`. */
export function fits(limits: Limits, running: readonly Countable[], adding: readonly Countable[]): boolean {
  const all = [...running, ...adding];
  if (limits.actions !== null && all.length > limits.actions) return false;
  const migs = all.filter((a) => a.kind === 'migrate');
  if (limits.migrations !== null && migs.length > limits.migrations) return false;
  const over = (cap: number | null, key: (a: Countable) => string | undefined) => {
    if (cap === null) return false;
    const n = new Map<string, number>();
    for (const a of migs) {
      const k = key(a);
      if (k === undefined) continue;
      const c = (n.get(k) ?? 0) + 1;
      if (c > cap) return true;
      n.set(k, c);
    }
    return false;
  };
  return !over(limits.perSource, (a) => a.from) && !over(limits.perDestination, (a) => a.to);
}

export function describeLimits(l: Limits): string {
  const parts: string[] = [];
  if (l.actions !== null) parts.push(`at most ${l.actions} action(s) at once`);
  if (l.migrations !== null) parts.push(`at most ${l.migrations} migration(s) at once`);
  if (l.perSource !== null) parts.push(`at most ${l.perSource} migration(s) at once per source host`);
  if (l.perDestination !== null) parts.push(`at most ${l.perDestination} incoming migration(s) at once per destination host`);
  return parts.join('; ') || 'no limit on concurrency';
}
