import { fits } from './limits.ts';
import type { PlanAction, PlanGraph } from './graph.ts';

/**
 * Checks a schedule (simulated or recorded) against every rule of its plan:
 * predecessors ended before a start, sync units started together, limits
 * never exceeded. Returns the violations as sentences; empty when none.
 * An action with start null did not run (skipped).
 */

export interface Timed {
  id: string;
  start: number | null;
  end: number | null;
}

export function scheduleViolations(graph: PlanGraph, timed: readonly Timed[], tolerance = 0): string[] {
  const out: string[] = [];
  const at = new Map(timed.map((t) => [t.id, t]));
  const byId = new Map(graph.actions.map((a) => [a.id, a]));
  for (const a of graph.actions) {
    const t = at.get(a.id);
    if (!t || t.start === null) continue;
    if (t.end === null || t.end < t.start) out.push(`${a.id} has no valid end`);
    for (const w of a.waits) {
      const p = at.get(w.id);
      if (!p || p.end === null) out.push(`${a.id} started but ${w.id} (${w.why}) never ended`);
      else if (t.start < p.end - tolerance) out.push(`${a.id} started at ${t.start} before ${w.id} (${w.why}) ended at ${p.end}`);
    }
  }
  graph.syncUnits.forEach((unit) => {
    const starts = unit.map((id) => at.get(id)?.start ?? null).filter((s): s is number => s !== null);
    if (starts.length && Math.max(...starts) - Math.min(...starts) > tolerance)
      out.push(`sync unit ${unit.join(', ')} started at ${starts.join(', ')}`);
  });
  // the set of running actions only grows at a start: check the limits there.
  // Zero-length actions occupy no time and are left out (their order among
  // actions starting at the same instant is not in the times).
  const ran = timed.filter((t): t is Timed & { start: number; end: number } => t.start !== null && t.end !== null && t.end > t.start);
  for (const s of ran) {
    const running: PlanAction[] = ran
      .filter((o) => o.start <= s.start + tolerance && s.start < o.end - tolerance)
      .map((o) => byId.get(o.id)!)
      .filter(Boolean);
    if (!fits(graph.limits, [], running)) out.push(`limits exceeded at ${s.start}: ${running.map((r) => r.id).join(', ')} ran together`);
  }
  return out;
}
