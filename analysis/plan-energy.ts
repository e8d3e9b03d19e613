/**
 * Energy of an executed migration plan (Kherbache et al.'s Table 1): the power
 * above idle of the hosts the plan touches, integrated over the plan's window.
 * Summing per-migration energies instead would count the shared host power of
 * overlapping (parallel) migrations more than once. Pure: recorded plans,
 * migrations and power readings in, joules out.
 */
import { excessEnergy, powerPoints, type PowerPoint } from '../harness/power/energy.ts';
import type { Sample } from '../harness/store/schema/index.ts';
import { observations, type Migration, type RunDir } from './rundir.ts';

const finite = (xs: (number | null | undefined)[]): number[] => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));

/** One executed plan (treatment and repetition): its window on the executor's clock (epoch ms) and the hosts it touches. */
export interface PlanWindow {
  treatment: string;
  rep: number;
  startMs: number;
  endMs: number;
  hosts: string[];
}

/**
 * The window of each executed plan: start..end from plans.jsonl (the latest
 * attempt of a redone unit), else the span of its migrations (first start to
 * last end). Hosts: every source and destination of its migrations.
 */
export function planWindows(run: Pick<RunDir, 'plans' | 'migrations'>): PlanWindow[] {
  const byKey = new Map<string, Migration[]>();
  for (const m of observations(run.migrations).filter((x) => x.plan)) {
    const k = `${m.treatment}|${m.rep}`;
    byKey.set(k, [...(byKey.get(k) ?? []), m]);
  }
  const latest = new Map<string, (typeof run.plans)[number]>();
  for (const p of run.plans) {
    const k = `${p.treatment}|${p.rep}`;
    const cur = latest.get(k);
    if (!cur || p.attempt >= cur.attempt) latest.set(k, p);
  }
  const out: PlanWindow[] = [];
  for (const [k, ms] of byKey) {
    const p = latest.get(k);
    const hosts = [...new Set(ms.flatMap((m) => [m.src, m.dst]))].sort();
    let startMs = p?.start ?? NaN;
    let endMs = p?.end ?? NaN;
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) {
      startMs = Math.min(...finite(ms.map((m) => m.plan?.start_ms)));
      endMs = Math.max(...finite(ms.map((m) => m.plan?.end_ms)));
    }
    if (Number.isFinite(startMs) && Number.isFinite(endMs) && endMs > startMs)
      out.push({ treatment: ms[0].treatment, rep: ms[0].rep, startMs, endMs, hosts });
  }
  return out;
}

export interface PlanEnergy {
  joules: number | null;
  /** Least share of the window covered by readings over the plan's hosts (0..1). */
  coverage: number;
  /** Why joules is null. */
  reason: string | null;
}

/**
 * Energy of a plan: the integral of each host's power above its idle power
 * over the plan's window, summed over its hosts. Counted once however many
 * of its migrations overlap (summing per-migration energies would count the
 * shared host power of overlapping migrations again). Null with the reason
 * when a host has no idle power or readings cover less than `minCoverage`.
 */
export function planEnergy(
  w: PlanWindow,
  power: ReadonlyMap<string, readonly PowerPoint[]>,
  idleW: Readonly<Record<string, number>>,
  minCoverage: number,
): PlanEnergy {
  let joules = 0;
  let coverage = 1;
  for (const h of w.hosts) {
    if (typeof idleW[h] !== 'number') return { joules: null, coverage: 0, reason: `no idle power of host ${h} in the manifest` };
    const e = excessEnergy(power.get(h) ?? [], idleW[h], w.startMs, w.endMs);
    joules += e.joules;
    coverage = Math.min(coverage, e.coveredFraction);
  }
  if (!Number.isFinite(joules) || !Number.isFinite(coverage))
    return { joules: null, coverage: 0, reason: 'power readings without a valid time or value' };
  if (coverage < minCoverage)
    return {
      joules: null,
      coverage,
      reason: `power readings cover ${(coverage * 100).toFixed(0)} % of the window (< ${minCoverage * 100} %)`,
    };
  return { joules, coverage, reason: null };
}

/** Plan energies of a run from its power samples, keyed "treatment|rep"; empty without power samples. */
export function planEnergies(
  run: Pick<RunDir, 'plans' | 'migrations' | 'manifest'>,
  samples: readonly Sample[],
  minCoverage: number,
): Map<string, PlanEnergy & { window: PlanWindow }> {
  const out = new Map<string, PlanEnergy & { window: PlanWindow }>();
  const power = samples.filter((s) => s.measurement === 'power');
  if (!power.length) return out;
  const hosts = [...new Set(power.map((s) => s.tags.host).filter((h): h is string => typeof h === 'string'))];
  const points = new Map(hosts.map((h) => [h, powerPoints(power, h)]));
  for (const w of planWindows(run))
    out.set(`${w.treatment}|${w.rep}`, { ...planEnergy(w, points, run.manifest.power_idle_w ?? {}, minCoverage), window: w });
  return out;
}
