import type { MigrateAction, PlanAction, PlanGraph, PowerAction } from './graph.ts';
import { PlanProgress } from './progress.ts';

/**
 * Simulates a plan: actions start as soon as the rules allow (the same
 * PlanProgress the executor uses) and progress at rates given by a model,
 * so a model can make concurrent migrations slow each other down. Pure and
 * deterministic; times in ms from the plan start.
 */

export interface ProgressModel {
  /** Amount of work of an action, in the unit its rate is given in (ms, bytes, ...). */
  work(a: PlanAction): number;
  /** Rate (work per ms) of each running action, given all that run together. */
  rates(running: readonly PlanAction[]): number[];
}

export interface SimulatedAction {
  action: PlanAction;
  start: number;
  end: number;
}

export interface Schedule {
  /** In the graph's priority order. */
  items: SimulatedAction[];
  /** First start -> last end, ms. */
  completionMs: number;
}

/** Each action takes a fixed time, whatever runs beside it. */
export function fixedDurations(durationMs: (a: PlanAction) => number): ProgressModel {
  return { work: durationMs, rates: (running) => running.map(() => 1) };
}

/** A migration's transfer: bytes over resources (link directions) it crosses. */
export interface Transfer {
  bytes: number;
  resources: string[];
}

/**
 * Fluid fair share: a resource's capacity is split equally among the
 * migrations crossing it; a migration goes at its smallest share. This is
 * what makes parallel migrations over one link each take longer.
 */
export function fairShareModel(opts: {
  transfer: (a: MigrateAction) => Transfer;
  /** Bytes per ms of each resource. */
  capacity: (resource: string) => number;
  powerMs: (a: PowerAction) => number;
}): ProgressModel {
  const transfers = new Map<string, Transfer>();
  const transferOf = (a: MigrateAction) => {
    let t = transfers.get(a.id);
    if (!t) {
      t = opts.transfer(a);
      if (t.resources.length === 0) throw new Error(`migration '${a.id}' crosses no resource`);
      transfers.set(a.id, t);
    }
    return t;
  };
  return {
    work: (a) => (a.kind === 'migrate' ? transferOf(a).bytes : opts.powerMs(a)),
    rates: (running) => {
      const users = new Map<string, number>();
      for (const a of running) if (a.kind === 'migrate') for (const r of transferOf(a).resources) users.set(r, (users.get(r) ?? 0) + 1);
      return running.map((a) =>
        a.kind === 'migrate' ? Math.min(...transferOf(a).resources.map((r) => opts.capacity(r) / users.get(r)!)) : 1,
      );
    },
  };
}

export function simulate(graph: PlanGraph, model: ProgressModel): Schedule {
  const progress = new PlanProgress(graph);
  const start = new Map<string, number>();
  const end = new Map<string, number>();
  const remaining = new Map<string, number>();
  let t = 0;
  for (;;) {
    for (const unit of progress.startable()) {
      progress.start(unit);
      for (const a of unit) {
        const w = model.work(a);
        if (!(w >= 0) || !Number.isFinite(w)) throw new Error(`work of '${a.id}' must be a finite number >= 0, got ${w}`);
        start.set(a.id, t);
        remaining.set(a.id, w);
      }
    }
    const running = progress.running();
    if (running.length === 0) break;
    const rates = model.rates(running);
    const ttf = running.map((a, i) => (remaining.get(a.id)! === 0 ? 0 : rates[i] > 0 ? remaining.get(a.id)! / rates[i] : Infinity));
    const dt = Math.min(...ttf);
    if (!Number.isFinite(dt)) throw new Error('simulation stalled: every running action has rate 0');
    t += dt;
    running.forEach((a, i) => {
      // finish together what ends within rounding of the earliest end
      if (ttf[i] <= dt * (1 + 1e-9) + 1e-9) {
        remaining.set(a.id, 0);
        end.set(a.id, t);
        progress.finish(a.id, true);
      } else remaining.set(a.id, remaining.get(a.id)! - rates[i] * dt);
    });
  }
  if (!progress.finished()) throw new Error('simulation ended with actions that could never start');
  const items = graph.actions.map((action) => ({ action, start: start.get(action.id)!, end: end.get(action.id)! }));
  const completionMs = items.length ? Math.max(...items.map((i) => i.end)) - Math.min(...items.map((i) => i.start)) : 0;
  return { items, completionMs };
}

/** Number of migrations running at each moment of an item's span, at most. */
export function peakMigrationsDuring(schedule: Schedule, item: SimulatedAction): number {
  const migs = schedule.items.filter((i) => i.action.kind === 'migrate');
  // the count only rises at a start, so checking the item's start and every start inside its span is enough
  const instants = [item.start, ...migs.map((m) => m.start).filter((s) => s > item.start && s < item.end)];
  return Math.max(...instants.map((t) => migs.filter((m) => (m.start <= t && t < m.end) || (m.start === t && m.end === t)).length));
}
