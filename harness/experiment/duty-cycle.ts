/**
 * The duty cycle of a campaign: time migrating / wall time, and where the
 * rest went. Pure derivation from the runner's spans (timing.jsonl) and the
 * migrations' t_cmd..t_done windows.
 */
import type { DutyCycle, TimingLine } from '../store/schema/index.ts';

type Span = readonly [number, number];

/** Sorted, disjoint union of spans (empty and reversed ones dropped). */
export function unionOf(spans: readonly Span[]): [number, number][] {
  const xs = spans.filter(([a, b]) => b > a).sort((p, q) => p[0] - q[0]);
  const out: [number, number][] = [];
  for (const [a, b] of xs) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

const total = (u: readonly Span[]) => u.reduce((s, [a, b]) => s + (b - a), 0);

/** Length of [a, b] not covered by the disjoint sorted union `u`. */
function outside(a: number, b: number, u: readonly Span[]): number {
  let len = Math.max(0, b - a);
  for (const [x, y] of u) {
    if (y <= a) continue;
    if (x >= b) break;
    len -= Math.min(b, y) - Math.max(a, x);
  }
  return len;
}

/** Clips spans to [from, to]. */
const clip = (s: readonly Span[], from: number, to: number): Span[] =>
  s.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as Span).filter(([a, b]) => b > a);

/**
 * Duty cycle over [startMs, endMs]: the union of the migration windows, and
 * for each span kind its time outside them (a kind's own overlapping spans,
 * e.g. two guests starting at once, count once). Unaccounted: wall time in
 * neither a migration nor a span.
 */
export function dutyCycle(o: {
  startMs: number;
  endMs: number;
  migrations: readonly { start: number; end: number }[];
  spans: readonly Pick<TimingLine, 'kind' | 'start_ms' | 'end_ms'>[];
}): DutyCycle {
  const { startMs, endMs } = o;
  const wall = Math.max(0, endMs - startMs);
  const mig = unionOf(
    clip(
      o.migrations.map((m) => [m.start, m.end] as Span),
      startMs,
      endMs,
    ),
  );
  const migrating = total(mig);
  const byKind = new Map<string, Span[]>();
  for (const s of o.spans) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), [s.start_ms, s.end_ms]]);
  const dead = [...byKind].map(([kind, ss]) => ({
    kind,
    ms: unionOf(clip(ss, startMs, endMs)).reduce((n, [a, b]) => n + outside(a, b, mig), 0),
    count: ss.length,
  }));
  dead.sort((a, b) => b.ms - a.ms || a.kind.localeCompare(b.kind));
  const covered = unionOf([
    ...mig,
    ...clip(
      o.spans.map((s) => [s.start_ms, s.end_ms] as Span),
      startMs,
      endMs,
    ),
  ]);
  return {
    start_ms: startMs,
    end_ms: endMs,
    wall_ms: wall,
    migrating_ms: migrating,
    migrations: o.migrations.length,
    duty_cycle: wall > 0 ? migrating / wall : null,
    dead_ms: dead,
    unaccounted_ms: Math.max(0, wall - total(covered)),
  };
}

/** The duty-cycle lines of the run summary: the ratio, then the largest dead-time components. */
export function dutyCycleText(d: DutyCycle, top = 6): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const pct = (ms: number) => (d.wall_ms > 0 ? `${((ms / d.wall_ms) * 100).toFixed(1)} %` : '-');
  const head =
    `duty cycle: ${d.duty_cycle === null ? '-' : `${(d.duty_cycle * 100).toFixed(1)} %`} ` +
    `(${s(d.migrating_ms)} migrating of ${s(d.wall_ms)} wall time, ${d.migrations} migrations)`;
  const parts = [...d.dead_ms.filter((x) => x.ms > 0), { kind: 'unaccounted', ms: d.unaccounted_ms, count: 0 }]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((x) => `${x.kind} ${s(x.ms)} (${pct(x.ms)}${x.count > 1 ? `, ${x.count}x` : ''})`);
  return `${head}\ndead time: ${parts.join(', ')}`;
}
