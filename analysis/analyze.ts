/**
 * Runs every analysis over a run directory in one pass over the samples:
 * energy fits, hot/cold parameters, duration prediction, variability tables,
 * plan metrics, and the power series the report plots.
 */
import { fitEnergy, type EnergyReport } from './models/energy.ts';
import type { CurvePoint } from './models/hotcold.ts';
import { analyzePlans, type PlanAnalysis } from './plans.ts';
import { DEFAULT_GOODPUT, predictMigrations, workloadParams, type DurationReport } from './prediction.ts';
import { streamSamples, type RunDir } from './rundir.ts';
import { VARIABILITY_METRICS, variabilityTable, type VariabilityTable } from './variability.ts';

export interface RunCounts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  partial: number;
  /** Failure reasons with counts. */
  reasons: Record<string, number>;
}

export interface PowerPoint {
  t: number;
  host: string;
  watts: number;
}

export interface AnalysisResult {
  counts: RunCounts;
  energy: { pooled: EnergyReport; perWorkload: EnergyReport };
  duration: DurationReport;
  curves: Map<string, CurvePoint[]>;
  variability: VariabilityTable[];
  plans: PlanAnalysis;
  /** Power in the window of the first migrations (for the timeline plot). */
  power: { window: { start: number; end: number } | null; points: PowerPoint[]; samples: number };
  /** Migration spans inside the power window, ms epoch. */
  powerWindowMigrations: { id: string; vm: string; start: number; end: number }[];
}

export interface AnalyzeOptions {
  goodput?: number;
  seed?: number;
  /** How many migrations the power timeline covers. */
  powerWindowMigrations?: number;
}

export function countRun(run: RunDir): RunCounts {
  const c: RunCounts = { total: run.migrations.length, completed: 0, failed: 0, cancelled: 0, partial: 0, reasons: {} };
  for (const m of run.migrations) {
    if (m.partial) c.partial++;
    if (m.status === 'completed') c.completed++;
    else {
      if (m.status === 'failed') c.failed++;
      else c.cancelled++;
      const r = m.reason ?? m.status;
      c.reasons[r] = (c.reasons[r] ?? 0) + 1;
    }
  }
  return c;
}

export async function analyzeRun(run: RunDir, opts: AnalyzeOptions = {}): Promise<AnalysisResult> {
  const goodput = opts.goodput ?? DEFAULT_GOODPUT;
  // Window of the power timeline: the first N migrations in time.
  const spans = run.migrations
    .map((m) => ({ id: m.id, vm: m.vm, start: m.t_cmd ? Date.parse(m.t_cmd) : NaN, end: m.t_done ? Date.parse(m.t_done) : NaN }))
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end))
    .sort((a, b) => a.start - b.start);
  const inWindow = spans.slice(0, opts.powerWindowMigrations ?? 20);
  const window = inWindow.length
    ? { start: inWindow[0].start - 30_000, end: Math.max(...inWindow.map((s) => s.end)) + 30_000 }
    : null;

  const curves = new Map<string, CurvePoint[]>();
  const points: PowerPoint[] = [];
  // Peak of summed host power per treatment: per (treatment, second) keep each host's latest watts.
  const perSecond = new Map<string, Map<string, number>>();
  let powerSamples = 0;
  await streamSamples(run, (s) => {
    if (s.measurement === 'dirty_trace') {
      const w = s.tags.workload ?? '';
      const t = Number(s.fields.window_s), d = Number(s.fields.dirtied_mib);
      if (!Number.isFinite(t) || !Number.isFinite(d)) return;
      let arr = curves.get(w);
      if (!arr) curves.set(w, (arr = []));
      arr.push({ t, d });
      return;
    }
    const watts = Number(s.fields.watts);
    if (!Number.isFinite(watts)) return;
    powerSamples++;
    const t = Date.parse(s.t);
    const host = s.tags.host ?? '';
    if (window && t >= window.start && t <= window.end) points.push({ t, host, watts });
    const tr = s.tags.treatment;
    if (tr) {
      const key = `${tr}|${Math.floor(t / 1000)}`;
      let m = perSecond.get(key);
      if (!m) perSecond.set(key, (m = new Map()));
      m.set(host, watts);
    }
  }, ['dirty_trace', 'power']);
  const peak = new Map<string, number>();
  for (const [key, hosts] of perSecond) {
    const tr = key.slice(0, key.lastIndexOf('|'));
    let sum = 0;
    for (const w of hosts.values()) sum += w;
    if (sum > (peak.get(tr) ?? -Infinity)) peak.set(tr, sum);
  }

  const params = workloadParams(run.migrations, curves, goodput);
  return {
    counts: countRun(run),
    energy: { pooled: fitEnergy(run.migrations, 'pooled', opts.seed), perWorkload: fitEnergy(run.migrations, 'per-workload', opts.seed) },
    duration: predictMigrations(run.migrations, params, goodput),
    curves,
    variability: VARIABILITY_METRICS.map((m) => variabilityTable(run, m)).filter((t): t is VariabilityTable => t !== null),
    plans: analyzePlans(run, peak),
    power: { window, points, samples: powerSamples },
    powerWindowMigrations: window ? inWindow : [],
  };
}
