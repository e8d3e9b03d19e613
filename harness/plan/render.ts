import { describeLimits } from './limits.ts';
import { describeAction, type PlanAction, type PlanGraph } from './graph.ts';
import { peakMigrationsDuring, type Schedule, type SimulatedAction } from './simulate.ts';

/** Text views of a plan and its simulated schedule, for `migbench plan show`. */

const short = (a: PlanAction) => (a.kind === 'migrate' ? a.vm : describeAction(a));

export function formatSeconds(ms: number): string {
  return ms >= 600_000 ? `${(ms / 60_000).toFixed(1)}m` : `${(ms / 1000).toFixed(1)}s`;
}

/** What an action waits for, grouped by reason, e.g. "vm1, vm2 (group); power-on r2-h1 (boot)". */
export function describeWaits(graph: PlanGraph, a: PlanAction): string {
  const byId = new Map(graph.actions.map((x) => [x.id, x]));
  const parts: string[] = [];
  for (const why of ['boot', 'group', 'after', 'shutdown'] as const) {
    const ws = a.waits.filter((w) => w.why === why).map((w) => short(byId.get(w.id)!));
    if (ws.length) parts.push(`${ws.join(', ')} (${why === 'shutdown' ? 'last out' : why})`);
  }
  if (a.sync !== null)
    parts.push(
      `starts with ${graph.syncUnits[a.sync]
        .filter((id) => id !== a.id)
        .map((id) => short(byId.get(id)!))
        .join(', ')}`,
    );
  return parts.join('; ') || '-';
}

export function describePlan(graph: PlanGraph): string {
  const p = graph.plan;
  const counts = (kind: PlanAction['kind']) => graph.actions.filter((a) => a.kind === kind).length;
  const kind =
    p.kind +
    (p.k !== undefined ? ` k=${p.k}` : '') +
    (p.dst_k !== undefined ? ` dst_k=${p.dst_k}` : '') +
    (p.groups ? ` (${p.groups.length} groups)` : '');
  const extra = [counts('power-on') && `${counts('power-on')} boot(s)`, counts('power-off') && `${counts('power-off')} shutdown(s)`].filter(
    Boolean,
  );
  return `plan ${kind}: ${counts('migrate')} migration(s)${extra.length ? `, ${extra.join(', ')}` : ''}; ${describeLimits(graph.limits)}`;
}

/** Items by simulated start, ties in priority order. */
export function byStart(schedule: Schedule): SimulatedAction[] {
  return [...schedule.items].sort((x, y) => x.start - y.start || x.action.order - y.action.order);
}

export function formatPlanList(graph: PlanGraph, schedule: Schedule): string {
  const rows = byStart(schedule).map((it, i) => [
    String(i + 1),
    describeAction(it.action),
    formatSeconds(it.start),
    formatSeconds(it.end),
    formatSeconds(it.end - it.start),
    it.action.kind === 'migrate' ? String(peakMigrationsDuring(schedule, it)) : '-',
    describeWaits(graph, it.action),
  ]);
  const head = ['#', 'action', 'start', 'end', 'duration', 'concurrent', 'waits for'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const right = new Set([0, 2, 3, 4, 5]);
  const line = (r: string[]) =>
    r.map((cell, c) => (c === r.length - 1 ? cell : right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

const BAR: Record<PlanAction['kind'], string> = { migrate: '#', 'power-on': '+', 'power-off': '-' };

/** One row per action, bars on a shared time axis `width` characters wide. */
export function formatGantt(schedule: Schedule, width = 60): string {
  const items = byStart(schedule);
  const t0 = Math.min(...items.map((i) => i.start));
  const span = Math.max(schedule.completionMs, 1);
  const col = (t: number) => Math.round(((t - t0) / span) * width);
  const label = Math.max(...items.map((i) => describeAction(i.action).length));
  const axis = Array.from({ length: width + 1 }, () => ' ');
  for (let c = 0; c <= width; c += 15) {
    const text = formatSeconds((c / width) * span);
    if (c + text.length <= width + 8) for (let j = 0; j < text.length; j++) axis[c + j] = text[j];
  }
  const rows = items.map((it) => {
    const a = col(it.start);
    const b = Math.max(col(it.end), a + 1);
    const bar = ' '.repeat(a) + BAR[it.action.kind].repeat(b - a);
    return `${describeAction(it.action).padEnd(label)} |${bar.padEnd(width)}|`;
  });
  return [
    `${' '.repeat(label)}  ${axis.join('').trimEnd()}`,
    ...rows,
    `${' '.repeat(label)}  # migration  + power-on  - power-off; completion ${formatSeconds(schedule.completionMs)}`,
  ].join('\n');
}
