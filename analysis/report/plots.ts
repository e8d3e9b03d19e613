/**
 * vega-lite specs for the report's figures. Each builder returns null when
 * it has no data, so the report can omit the section with a note.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalysisResult } from '../analyze.ts';
import { predictDuration } from '../models/duration.ts';
import { seededRng } from '../../harness/util/rng.ts';

type Row = Record<string, string | number | null>;
const WIDTH = 520;

/** Keeps at most n rows, chosen with a seeded RNG, so large campaigns stay plottable. */
export function thin<T>(rows: readonly T[], n: number, seed = 1): T[] {
  if (rows.length <= n) return [...rows];
  const rng = seededRng(seed);
  const idx = rows.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(idx.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => rows[i]);
}

export function downtimeVsFactors(a: AnalysisResult): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const t of a.variability) {
    if (!t.metric.startsWith('downtime')) continue;
    for (const e of t.mainEffects)
      for (const l of e.levels)
        rows.push({
          factor: e.factor,
          level: String(l.level),
          kind: t.metric.replace('downtime_', '').replace('_ms', ''),
          mean_ms: l.mean,
        });
  }
  if (rows.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Mean downtime per factor level (main effects)',
    data: { values: rows },
    facet: { column: { field: 'factor', type: 'nominal', title: null } },
    spec: {
      width: 200,
      height: 200,
      layer: [
        {
          mark: { type: 'line' },
          encoding: {
            x: { field: 'level', type: 'ordinal', sort: null },
            y: { field: 'mean_ms', type: 'quantitative', title: 'downtime (ms)' },
            color: { field: 'kind', type: 'nominal', title: 'downtime' },
          },
        },
        {
          mark: { type: 'point', filled: true },
          encoding: {
            x: { field: 'level', type: 'ordinal', sort: null },
            y: { field: 'mean_ms', type: 'quantitative' },
            color: { field: 'kind', type: 'nominal' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  } as TopLevelSpec;
}

export function durationVsBandwidth(a: AnalysisResult): TopLevelSpec | null {
  const rows = a.duration.rows;
  if (rows.length === 0) return null;
  // Keep the figure readable: at most 6 workloads and 3 memory sizes.
  const workloads = [...new Set(rows.map((r) => r.workload))].slice(0, 6);
  const sizes = [...new Set(rows.map((r) => r.muMiB))].sort((x, y) => x - y).slice(0, 3);
  const sel = rows.filter((r) => workloads.includes(r.workload) && sizes.includes(r.muMiB));
  const obs: Row[] = thin(sel, 3000).map((r) => ({
    bw: r.bwMiBps,
    d: r.observedS,
    workload: r.workload,
    memory: `${r.muMiB} MiB`,
    series: 'observed',
  }));
  const curve: Row[] = [];
  const bws = sel.map((r) => r.bwMiBps);
  const lo = Math.min(...bws) * 0.8,
    hi = Math.max(...bws) * 1.1;
  const D = 0.3;
  for (const p of a.duration.params) {
    if (!workloads.includes(p.workload)) continue;
    for (const mu of sizes)
      for (let k = 0; k <= 80; k++) {
        const bw = lo + ((hi - lo) * k) / 80;
        const pr = predictDuration(p.fit, { bw, mu, D });
        if (pr.converges && pr.d < 10 * Math.max(...sel.map((r) => r.observedS)))
          curve.push({ bw, d: pr.d, workload: p.workload, memory: `${mu} MiB` });
      }
  }
  const layer = [
    {
      data: { values: obs },
      mark: { type: 'point', opacity: 0.6 },
      encoding: {
        x: { field: 'bw', type: 'quantitative', title: 'bandwidth (MiB/s)' },
        y: { field: 'd', type: 'quantitative', title: 'migration time (s)', scale: { type: 'log' } },
        color: { field: 'workload', type: 'nominal' },
      },
    },
    {
      data: { values: curve },
      mark: { type: 'line' },
      encoding: {
        x: { field: 'bw', type: 'quantitative' },
        y: { field: 'd', type: 'quantitative' },
        color: { field: 'workload', type: 'nominal' },
        detail: { field: 'memory' },
      },
    },
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Migration time vs bandwidth: observed (points) and mVM model (lines)',
    width: WIDTH,
    height: 320,
    layer:
      sizes.length > 1
        ? layer.map((l) => ({
            ...l,
            encoding: {
              ...l.encoding,
              strokeDash: { field: 'memory', type: 'nominal', title: 'memory' },
              ...(l.mark.type === 'point' ? { shape: { field: 'memory', type: 'nominal' } } : {}),
            },
          }))
        : layer,
  } as TopLevelSpec;
}

export function powerTimeline(a: AnalysisResult): TopLevelSpec | null {
  const w = a.power.window;
  if (!w || a.power.points.length === 0) return null;
  const pts = thin(a.power.points, 4000).map((p) => ({ t: (p.t - w.start) / 1000, host: p.host, watts: p.watts }));
  const migs = a.powerWindowMigrations.map((m) => ({ start: (m.start - w.start) / 1000, end: (m.end - w.start) / 1000, migration: m.id }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Power over time, first ${migs.length} migrations shaded`,
    width: WIDTH,
    height: 260,
    layer: [
      {
        data: { values: migs },
        mark: { type: 'rect', opacity: 0.15, color: '#e45756' },
        encoding: { x: { field: 'start', type: 'quantitative' }, x2: { field: 'end' } },
      },
      {
        data: { values: pts },
        mark: { type: 'line', strokeWidth: 1 },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'time since window start (s)' },
          y: { field: 'watts', type: 'quantitative', title: 'power (W)', scale: { zero: false } },
          color: { field: 'host', type: 'nominal' },
        },
      },
    ],
  } as TopLevelSpec;
}

export function planGantt(a: AnalysisResult): TopLevelSpec | null {
  const bars = a.plans.gantt;
  if (bars.length === 0) return null;
  const labels = [...new Set(bars.map((b) => `${b.treatment} ${b.label}`))].slice(0, 6);
  const rows = bars.map((b) => ({ ...b, plan: `${b.treatment} ${b.label}` })).filter((b) => labels.includes(b.plan));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Migration plans (first repetition of each)',
    data: { values: rows },
    facet: { row: { field: 'plan', type: 'nominal', title: null } },
    spec: {
      width: WIDTH,
      height: { step: 14 } as unknown as number,
      mark: { type: 'bar', cornerRadius: 2 },
      encoding: {
        y: { field: 'vm', type: 'nominal', title: null },
        x: { field: 'startS', type: 'quantitative', title: 'time since plan start (s)' },
        x2: { field: 'endS' },
        color: { field: 'vm', type: 'nominal', legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export function planCdfs(a: AnalysisResult): TopLevelSpec | null {
  const rows: Row[] = [];
  for (const c of a.plans.curves) {
    for (const p of c.slowdown) rows.push({ plan: c.label, metric: 'slowdown of each migration vs sequential', value: p.value, p: p.p });
    for (const p of c.speedup) rows.push({ plan: c.label, metric: 'completion speedup vs sequential', value: p.value, p: p.p });
  }
  if (rows.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'CDFs against sequential execution',
    data: { values: rows },
    facet: { column: { field: 'metric', type: 'nominal', title: null } },
    spec: {
      width: 250,
      height: 220,
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'value', type: 'quantitative', title: 'ratio' },
        y: { field: 'p', type: 'quantitative', title: 'fraction' },
        color: { field: 'plan', type: 'nominal' },
      },
    },
    resolve: { scale: { x: 'independent' } },
  } as TopLevelSpec;
}

export function energyFit(a: AnalysisResult): TopLevelSpec | null {
  const f = a.energy.pooled.fits[0];
  if (!f) return null;
  const pts = thin(f.residuals, 3000).map((r) => ({ mb: r.mb, energy: r.energy }));
  const xs = f.residuals.map((r) => r.mb);
  const lo = Math.min(...xs),
    hi = Math.max(...xs);
  const line = [lo, hi].map((mb) => ({ mb, energy: f.alpha * mb + f.beta }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Energy vs transferred data: E = ${f.alpha.toFixed(3)} J/MB * V + ${f.beta.toFixed(2)} J (R² ${f.r2.toFixed(3)})`,
    width: WIDTH,
    height: 260,
    layer: [
      {
        data: { values: pts },
        mark: { type: 'point', opacity: 0.4, size: 12 },
        encoding: {
          x: { field: 'mb', type: 'quantitative', title: 'transferred (MB)' },
          y: { field: 'energy', type: 'quantitative', title: 'energy (J)' },
        },
      },
      {
        data: { values: line },
        mark: { type: 'line', color: '#e45756' },
        encoding: { x: { field: 'mb', type: 'quantitative' }, y: { field: 'energy', type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}

export function dirtyCurves(a: AnalysisResult): TopLevelSpec | null {
  const rows: Row[] = [];
  const fits = new Map(a.duration.params.map((p) => [p.workload, p.fit]));
  const names = [...a.curves.keys()].slice(0, 6);
  const fitRows: Row[] = [];
  for (const w of names) {
    const pts = a.curves.get(w)!;
    for (const p of thin(pts, 400)) rows.push({ workload: w, t: p.t, d: p.d });
    const f = fits.get(w);
    if (f && f.method === 'curve') {
      const tmax = Math.max(...pts.map((p) => p.t));
      for (const t of [0, f.HPd, tmax]) fitRows.push({ workload: w, t, d: t <= f.HPd ? f.HPr * t : f.HPs + f.CPr * (t - f.HPd) });
    }
  }
  if (rows.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Dirtied memory D(t) and the two-segment hot/cold fit',
    width: WIDTH,
    height: 260,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'point', size: 10, opacity: 0.5 },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'window (s)' },
          y: { field: 'd', type: 'quantitative', title: 'dirtied (MiB)' },
          color: { field: 'workload', type: 'nominal' },
        },
      },
      {
        data: { values: fitRows },
        mark: { type: 'line' },
        encoding: {
          x: { field: 't', type: 'quantitative' },
          y: { field: 'd', type: 'quantitative' },
          color: { field: 'workload', type: 'nominal' },
        },
      },
    ],
  } as TopLevelSpec;
}

export interface Figure {
  id: string;
  title: string;
  spec: TopLevelSpec | null;
  /** Why the figure is missing. */
  emptyNote: string;
}

export function figures(a: AnalysisResult): Figure[] {
  return [
    {
      id: 'downtime-factors',
      title: 'Downtime vs factors',
      spec: downtimeVsFactors(a),
      emptyNote: 'no downtime measured in completed migrations',
    },
    {
      id: 'duration-bandwidth',
      title: 'Duration vs bandwidth',
      spec: durationVsBandwidth(a),
      emptyNote: a.duration.note ?? 'no predicted migrations',
    },
    { id: 'dirty-curves', title: 'Hot/cold pages', spec: dirtyCurves(a), emptyNote: 'no dirty_trace samples in this run' },
    { id: 'energy', title: 'Energy model', spec: energyFit(a), emptyNote: a.energy.pooled.note ?? 'no energy fit' },
    { id: 'power', title: 'Power over time', spec: powerTimeline(a), emptyNote: 'no power samples in this run' },
    { id: 'gantt', title: 'Migration plan', spec: planGantt(a), emptyNote: a.plans.note ?? 'no plan' },
    { id: 'plan-cdfs', title: 'Slowdown and speedup CDFs', spec: planCdfs(a), emptyNote: a.plans.note ?? 'no plan comparison' },
  ];
}
