/**
 * vega-lite specs for the report's figures. Each builder returns null when
 * it has no data, so the report can omit the section with a note.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { AnalysisResult } from '../analyze.ts';
import { mbitToMiBps, predictDuration } from '../models/duration.ts';
import { simulatePrecopy } from '../models/precopy.ts';
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

/**
 * mVM's Figure 4 from the run: measured durations per link rate (each
 * migration, and per treatment the mean and min..max), cancelled and failed
 * ones at the time they ended, and the model curves (mVM with the measured
 * memory in use, QEMU-like) from the parameters fitted on the run, over a
 * range of rates; where a model does not converge its curve has a gap and
 * the range is shaded.
 */
export function figure4Data(a: AnalysisResult, steps = 120): { curves: Row[]; regions: Row[]; measured: Row[]; spread: Row[] } {
  const v = a.validation;
  const params = v.display;
  const curves: Row[] = [];
  const regions: Row[] = [];
  const workloads = [...new Set(v.rows.map((r) => r.workload))].slice(0, 6);
  const measured: Row[] = v.rows
    .filter((r) => workloads.includes(r.workload) && r.linkRateMbit !== null && r.elapsedS !== null)
    .map((r) => ({
      workload: r.workload,
      rate: r.linkRateMbit,
      d: r.elapsedS,
      status: r.status === 'completed' ? 'completed' : r.status === 'cancelled' ? 'cancelled (did not converge)' : 'failed',
    }));
  // spread per treatment (workload x rate): mean and min..max of completed migrations
  const groups = new Map<string, number[]>();
  for (const m of measured)
    if (m.status === 'completed') {
      const k = JSON.stringify([m.workload, m.rate]);
      groups.set(k, [...(groups.get(k) ?? []), m.d as number]);
    }
  const spread: Row[] = [...groups].map(([k, ds]) => {
    const [workload, rate] = JSON.parse(k) as [string, number];
    return { workload, rate, min: Math.min(...ds), max: Math.max(...ds), mean: ds.reduce((s, x) => s + x, 0) / ds.length, n: ds.length };
  });
  for (const w of workloads) {
    const hc = params.hotcold.find((h) => h.workload === w);
    const mine = v.rows.filter((r) => r.workload === w && r.linkRateMbit !== null);
    if (!hc || mine.length === 0) continue;
    const rates = mine.map((r) => r.linkRateMbit!);
    const lo = Math.max(1, Math.min(...rates) * 0.5),
      hi = Math.max(...rates) * 1.5;
    const mus = mine.map((r) => r.muMiB).filter((x): x is number => x !== null);
    const mu = hc.mu_mib ?? (mus.length ? mus.sort((p, q) => p - q)[Math.floor((mus.length - 1) / 2)] : null);
    if (mu === null) continue;
    // the workload's (median) downtime limit: the stop rule depends on it
    const Ds = mine.map((r) => r.downtimeLimitS).sort((p, q) => p - q);
    const D = Ds[Math.floor((Ds.length - 1) / 2)];
    const models = [
      { name: 'mVM (measured mu)', f: (bw: number) => predictDuration(hc, { bw, mu, D }) },
      { name: 'QEMU-like (stop rule)', f: (bw: number) => simulatePrecopy(hc, { bw, mu, D, syncS: params.sync_s, maxTime: 3600 }) },
    ];
    for (const md of models) {
      let seg = 0;
      let prev = true;
      let regionStart: number | null = null;
      for (let k = 0; k <= steps; k++) {
        const rate = lo + ((hi - lo) * k) / steps;
        const p = md.f(mbitToMiBps(rate, params.goodput));
        if (p.converges) {
          if (!prev) seg++;
          curves.push({ workload: w, rate, d: p.d, model: md.name, segment: `${md.name} ${seg}` });
          if (regionStart !== null) {
            regions.push({ workload: w, x0: regionStart, x1: rate, region: `${md.name}: no convergence` });
            regionStart = null;
          }
        } else if (regionStart === null) regionStart = rate;
        prev = p.converges;
      }
      if (regionStart !== null) regions.push({ workload: w, x0: regionStart, x1: hi, region: `${md.name}: no convergence` });
    }
  }
  return { curves, regions, measured, spread };
}

export function figure4(a: AnalysisResult): TopLevelSpec | null {
  const { curves, regions, measured, spread } = figure4Data(a);
  if (measured.length === 0) return null;
  // the y axis ends a little above the slowest measured migration: model curves beyond it are clipped
  const ymax = 1.15 * Math.max(...measured.map((m) => m.d as number));
  const all = [
    ...curves.map((r) => ({ ...r, layer: 'curve' })),
    ...regions.map((r) => ({ ...r, layer: 'region' })),
    ...measured.map((r) => ({ ...r, layer: 'measured' })),
    ...spread.map((r) => ({ ...r, layer: 'spread' })),
  ];
  // as far as the model curves go (1.5 x the highest rate), so a point at the highest rate is not on the edge
  const xmax = 1.5 * Math.max(...measured.map((m) => m.rate as number));
  const x = { field: 'rate', type: 'quantitative', title: 'link rate (Mbit/s)', scale: { domain: [0, xmax] } };
  const y = { field: 'd', type: 'quantitative', title: 'migration time (s)', scale: { domain: [0, ymax], clamp: true } };
  const only = (l: string) => [{ filter: `datum.layer === '${l}'` }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: "Duration vs link rate (mVM's Figure 4): measured, and the models from the calibrated parameters",
      subtitle: curves.length
        ? 'Blue bars: min..max per treatment, tick: mean. Curves: hot/cold fitted on the whole run (trace, else all durations).'
        : 'No model curves: no D(t) trace and no workload with durations at two or more link rates to fit from.',
    },
    data: { values: all },
    facet: { row: { field: 'workload', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left', labelOrient: 'top' } } },
    spec: {
      width: WIDTH,
      height: 240,
      layer: [
        {
          transform: only('region'),
          mark: { type: 'rect', opacity: 0.15 },
          encoding: {
            x: { field: 'x0', type: 'quantitative', title: 'link rate (Mbit/s)', scale: { domain: [0, xmax] } },
            x2: { field: 'x1' },
            color: { field: 'region', type: 'nominal', title: 'no convergence', scale: { range: ['#f58518', '#e45756'] } },
          },
        },
        {
          transform: only('curve'),
          mark: { type: 'line', clip: true, strokeWidth: 2 },
          encoding: {
            x,
            y,
            detail: { field: 'segment' },
            strokeDash: {
              field: 'model',
              type: 'nominal',
              title: 'model',
              scale: {
                range: [
                  [6, 3],
                  [1, 0],
                ],
              },
            },
          },
        },
        {
          transform: only('spread'),
          mark: { type: 'rule', strokeWidth: 2, color: '#4c78a8' },
          encoding: { x, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } },
        },
        {
          transform: only('spread'),
          mark: { type: 'tick', color: '#4c78a8', thickness: 2, size: 14 },
          encoding: { x, y: { field: 'mean', type: 'quantitative' } },
        },
        {
          transform: only('measured'),
          mark: { type: 'point', filled: true, size: 40, opacity: 0.8, clip: true },
          encoding: {
            x,
            y,
            shape: {
              field: 'status',
              type: 'nominal',
              title: 'measured',
              scale: { domain: ['completed', 'cancelled (did not converge)', 'failed'], range: ['circle', 'cross', 'triangle-down'] },
            },
            fill: { value: '#222' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: { legend: { labelLimit: 360 } },
  } as TopLevelSpec;
}

/** Two-factor heat maps: mean response over A x B, one panel per pair and response. */
export function twoFactorHeatmaps(a: AnalysisResult): TopLevelSpec | null {
  // a pair with no completed migration in any cell has nothing to show
  const views = a.twoFactor.filter((v) => v.cells.some((c) => c.mean !== null)).slice(0, 12);
  if (views.length === 0) return null;
  const rows: Row[] = [];
  for (const v of views)
    for (const c of v.cells)
      rows.push({
        panel: `${v.response}: ${v.a} × ${v.b}`,
        A: c.a,
        B: c.b,
        mean: c.mean,
        label: c.mean === null ? 'none' : `${Math.round(c.mean)} (n=${c.n})`,
      });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Mean response over two factors (ms; completed migrations)',
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', title: null, header: { labelFontWeight: 'bold' } },
    columns: 2,
    spec: {
      width: 300,
      height: 180,
      layer: [
        {
          mark: { type: 'rect' },
          encoding: {
            x: { field: 'B', type: 'ordinal', sort: null, title: null, axis: { labelLimit: 200 } },
            y: { field: 'A', type: 'ordinal', sort: null, title: null, axis: { labelLimit: 260 } },
            color: { field: 'mean', type: 'quantitative', title: 'mean (ms)', scale: { range: ['#f7fbff', '#6baed6'] } },
          },
        },
        {
          mark: { type: 'text', fontSize: 11 },
          encoding: {
            x: { field: 'B', type: 'ordinal', sort: null },
            y: { field: 'A', type: 'ordinal', sort: null },
            text: { field: 'label' },
            color: { value: '#111' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent', color: 'independent' } },
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
  // views the run's design cannot have are left out, not shown empty: two-factor views need two
  // varied factors, the CDFs against sequential execution a plan other than sequential
  const designHas = (id: string) =>
    id === 'two-factor' ? a.twoFactor.length > 0 : id === 'plan-cdfs' ? a.plans.plans.some((p) => !p.label.startsWith('sequential')) : true;
  return [
    {
      id: 'downtime-factors',
      title: 'Downtime vs factors',
      spec: downtimeVsFactors(a),
      emptyNote: 'no downtime measured in completed migrations',
    },
    {
      id: 'duration-bandwidth',
      title: "Duration vs link rate (mVM's Figure 4)",
      spec: figure4(a),
      emptyNote: 'no migration with a link rate and a duration',
    },
    {
      id: 'two-factor',
      title: 'Two-factor views',
      spec: twoFactorHeatmaps(a),
      emptyNote: 'no completed migration in any cell of a pair of factors',
    },
    { id: 'dirty-curves', title: 'Hot/cold pages', spec: dirtyCurves(a), emptyNote: 'no dirty_trace samples in this run' },
    { id: 'energy', title: 'Energy model', spec: energyFit(a), emptyNote: a.energy.pooled.note ?? 'no energy fit' },
    { id: 'power', title: 'Power over time', spec: powerTimeline(a), emptyNote: 'no power samples in this run' },
    { id: 'gantt', title: 'Migration plan', spec: planGantt(a), emptyNote: a.plans.note ?? 'no plan' },
    { id: 'plan-cdfs', title: 'Slowdown and speedup CDFs', spec: planCdfs(a), emptyNote: a.plans.note ?? 'no plan comparison' },
  ].filter((f) => designHas(f.id));
}
