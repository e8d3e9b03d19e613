import { fits } from './limits.ts';
import { describeAction, type PlanAction, type PlanGraph } from './graph.ts';

/**
 * The state of a plan being carried out: which actions are pending,
 * running, done or skipped, and which may start now. Shared by the
 * simulator and the executor so both obey exactly the same rules.
 */

export type ActionStatus = 'pending' | 'running' | 'ok' | 'failed' | 'skipped';

export interface Skip {
  action: PlanAction;
  reason: string;
}

export class PlanProgress {
  private readonly status = new Map<string, ActionStatus>();
  private readonly byId = new Map<string, PlanAction>();
  private readonly dependants = new Map<string, PlanAction[]>();
  readonly reasons = new Map<string, string>();

  constructor(readonly graph: PlanGraph) {
    for (const a of graph.actions) {
      this.status.set(a.id, 'pending');
      this.byId.set(a.id, a);
    }
    for (const a of graph.actions) for (const w of a.waits) this.dependants.set(w.id, [...(this.dependants.get(w.id) ?? []), a]);
  }

  statusOf(id: string): ActionStatus {
    const s = this.status.get(id);
    if (s === undefined) throw new Error(`no action '${id}' in this plan`);
    return s;
  }

  running(): PlanAction[] {
    return this.graph.actions.filter((a) => this.status.get(a.id) === 'running');
  }

  /** True when nothing is pending or running. */
  finished(): boolean {
    for (const s of this.status.values()) if (s === 'pending' || s === 'running') return false;
    return true;
  }

  /**
   * Units (single actions or sync units) that may start now, in priority
   * order: all members pending, all their predecessors ended ok, and
   * together with what runs (and what is started before them in this call)
   * within the limits. A unit that does not fit does not block later ones.
   */
  startable(): PlanAction[][] {
    const taken = this.running();
    const out: PlanAction[][] = [];
    const seenSync = new Set<number>();
    for (const a of this.graph.actions) {
      if (this.status.get(a.id) !== 'pending') continue;
      let unit: PlanAction[];
      if (a.sync !== null) {
        if (seenSync.has(a.sync)) continue;
        seenSync.add(a.sync);
        unit = this.graph.syncUnits[a.sync].map((id) => this.byId.get(id)!);
      } else unit = [a];
      const ready = unit.every((u) => this.status.get(u.id) === 'pending' && u.waits.every((w) => this.status.get(w.id) === 'ok'));
      if (!ready || !fits(this.graph.limits, taken, unit)) continue;
      out.push(unit);
      taken.push(...unit);
    }
    return out;
  }

  start(unit: readonly PlanAction[]): void {
    for (const a of unit) {
      if (this.status.get(a.id) !== 'pending') throw new Error(`action '${a.id}' started twice`);
      const open = a.waits.find((w) => this.status.get(w.id) !== 'ok');
      if (open) throw new Error(`action '${a.id}' started before '${open.id}' ended`);
      this.status.set(a.id, 'running');
    }
  }

  /** Records the end of a running action; returns the actions skipped because of it. */
  finish(id: string, ok: boolean, reason?: string): Skip[] {
    if (this.status.get(id) !== 'running') throw new Error(`action '${id}' ended but was not running`);
    this.status.set(id, ok ? 'ok' : 'failed');
    if (reason !== undefined) this.reasons.set(id, reason);
    return ok ? [] : this.skipDependants(id);
  }

  /** Skips everything still pending (the plan was aborted). */
  skipPending(reason: string): Skip[] {
    const out: Skip[] = [];
    for (const a of this.graph.actions) {
      if (this.status.get(a.id) !== 'pending') continue;
      this.status.set(a.id, 'skipped');
      this.reasons.set(a.id, reason);
      out.push({ action: a, reason });
    }
    return out;
  }

  /** A failed or skipped action takes its dependants and their sync partners with it. */
  private skipDependants(id: string): Skip[] {
    const out: Skip[] = [];
    const work = [id];
    const skip = (a: PlanAction, reason: string) => {
      if (this.status.get(a.id) !== 'pending') return;
      this.status.set(a.id, 'skipped');
      this.reasons.set(a.id, reason);
      out.push({ action: a, reason });
      work.push(a.id);
    };
    while (work.length) {
      const cur = this.byId.get(work.shift()!)!;
      const how = this.status.get(cur.id) === 'failed' ? 'failed' : 'was skipped';
      for (const d of this.dependants.get(cur.id) ?? []) skip(d, `waits for '${describeAction(cur)}', which ${how}`);
      if (cur.sync !== null) {
        for (const pid of this.graph.syncUnits[cur.sync]) {
          if (pid !== cur.id) skip(this.byId.get(pid)!, `starts together with '${describeAction(cur)}', which ${how}`);
        }
      }
    }
    return out;
  }
}
