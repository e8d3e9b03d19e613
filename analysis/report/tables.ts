/**
 * The report's tables as plain header/row string grids, shared by the HTML
 * and Markdown renderers. A section without data carries a one-line note.
 */
import type { AnalysisResult } from '../analyze.ts';
import { MVM_ENERGY, type EnergyReport } from '../models/energy.ts';
import { problemText, type RunDir } from '../rundir.ts';
import { ENERGY_MIN_COVERAGE } from '../analyze.ts';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  note?: string;
  caption?: string;
}

export function num(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(2);
  return x.toFixed(a >= 100 ? 1 : digits);
}
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '–');

export function runInfo(run: RunDir, a: AnalysisResult): Table {
  const m = run.manifest;
  const c = a.counts;
  const rows: [string, string][] = [
    ['name', m.name],
    ['started / ended', `${m.started_at ?? '?'} / ${m.ended_at ?? '?'}`],
    ['harness', `${m.harness?.version ?? '?'} (${m.harness?.commit ?? '?'})`],
    ['QEMU / accelerator', `${m.qemu_version ?? '?'} / ${m.accelerator ?? '?'}`],
    ['kernels host / guest', `${m.host_kernel ?? '?'} / ${m.guest_kernel ?? '?'}`],
    [
      'shaping',
      Object.entries(m.shaping_mechanisms ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || '?',
    ],
    ['power source', m.power_source ?? '?'],
    ['treatments', String(m.treatments.length)],
    [
      'factors',
      Object.entries(m.factors)
        .map(([k, v]) => `${k} ∈ {${v.join(', ')}}`)
        .join('; ') || 'none',
    ],
    ['migrations', `${c.total} (completed ${c.completed}, failed ${c.failed}, cancelled ${c.cancelled}, partial ${c.partial})`],
  ];
  if (Object.keys(c.reasons).length)
    rows.push([
      'failure reasons',
      Object.entries(c.reasons)
        .map(([r, n]) => `${r}: ${n}`)
        .join('; '),
    ]);
  return { title: 'Run', headers: ['', ''], rows };
}

export function energyTable(pooled: EnergyReport, perWorkload?: EnergyReport, lowCoverage = 0): Table {
  const fits = [...pooled.fits, ...(perWorkload && perWorkload.fits.length > 1 ? perWorkload.fits : [])];
  const left = lowCoverage
    ? ` ${lowCoverage} migration(s) left out: power readings covered less than ${ENERGY_MIN_COVERAGE * 100} % of the migration.`
    : '';
  return {
    title: 'Energy model E = α·V + β',
    caption: `V in MB transferred. mVM's calibration: α = ${MVM_ENERGY.alpha} J/MB, β = ${MVM_ENERGY.beta} J. 95 % intervals by seeded bootstrap.${left}`,
    headers: ['group', 'n', 'α (J/MB)', 'α 95 % CI', 'β (J)', 'β 95 % CI', 'R²'],
    rows: fits.map((f) => [
      f.group === 'all' ? 'pooled' : f.group,
      String(f.n),
      num(f.alpha, 4),
      `[${num(f.alphaCi.low, 4)}, ${num(f.alphaCi.high, 4)}]`,
      num(f.beta),
      `[${num(f.betaCi.low)}, ${num(f.betaCi.high)}]`,
      num(f.r2, 4),
    ]),
    note: fits.length ? undefined : pooled.note,
  };
}

export function hotColdTable(a: AnalysisResult): Table {
  return {
    title: 'Hot/cold pages per workload',
    headers: ['workload', 'from', 'HPs (MiB)', 'HPd (s)', 'HPr (MiB/s)', 'CPr (MiB/s)', 'R²', 'n'],
    rows: a.duration.params.map((p) => [
      p.workload,
      p.fit.method === 'curve' ? 'D(t) curve' : 'durations',
      num(p.fit.HPs),
      num(p.fit.HPd),
      num(p.fit.HPr),
      num(p.fit.CPr),
      num(p.fit.r2, 4),
      String(p.fit.n),
    ]),
    note: a.duration.params.length ? undefined : 'no dirty_trace samples and no workload measured at two or more bandwidths',
  };
}

export function predictionSummary(a: AnalysisResult): Table {
  const s = a.duration.summary;
  return {
    title: 'Duration model: predicted vs observed',
    caption: 'Relative error |predicted − observed| / observed; bandwidth = nominal link rate × goodput.',
    headers: ['migrations', 'predicted', 'median error', '90th pct error', 'accuracy (1 − median)', 'model says no convergence'],
    rows: s.n
      ? [[String(s.n), String(s.predicted), pct(s.medianRelError), pct(s.p90RelError), pct(1 - s.medianRelError), String(s.nonConvergent)]]
      : [],
    note: s.n ? undefined : a.duration.note,
  };
}

export function predictionRows(a: AnalysisResult, limit = 40): Table {
  const rows = a.duration.rows;
  return {
    title: 'Predicted vs observed per migration',
    caption:
      rows.length > limit ? `First ${limit} of ${rows.length}; all rows in migrations.csv via \`migbench export --csv\`.` : undefined,
    headers: ['migration', 'workload', 'bw (MiB/s)', 'memory (MiB)', 'observed (s)', 'predicted (s)', 'error'],
    rows: rows
      .slice(0, limit)
      .map((r) => [
        r.id,
        r.workload,
        num(r.bwMiBps),
        String(r.muMiB),
        num(r.observedS),
        r.converges ? num(r.predictedS) : `no convergence (${r.note})`,
        r.relError === null ? '–' : pct(r.relError),
      ]),
    note: rows.length ? undefined : a.duration.note,
  };
}

export function variabilitySummary(a: AnalysisResult): Table {
  return {
    title: 'Variability (Salfner et al., Table II)',
    caption: 'All values in ms. Ratios are max:min.',
    headers: ['response', 'n', 'overall mean', 'max:min treatment means', 'max:min all', 'largest within-treatment sd', 'overall sd'],
    rows: a.variability.map((t) => [
      t.metric,
      String(t.n),
      num(t.overallMean),
      num(t.treatmentMeansRatio),
      num(t.allRatio),
      num(t.maxWithinSd),
      num(t.overallSd),
    ]),
    note: a.variability.length ? undefined : 'no completed migrations with a migration time or downtime',
  };
}

export function perTreatmentTable(run: RunDir, a: AnalysisResult): Table {
  const metrics = a.variability.map((t) => t.metric);
  const byT = new Map<string, Map<string, string>>();
  const levels = new Map<string, string>();
  for (const t of a.variability)
    for (const p of t.perTreatment) {
      if (!byT.has(p.treatment)) byT.set(p.treatment, new Map());
      byT.get(p.treatment)!.set(t.metric, `${num(p.mean)} [${num(p.ciLow)}, ${num(p.ciHigh)}] n=${p.n}`);
      levels.set(p.treatment, Object.values(p.levels).join(', '));
    }
  const ids = [...byT.keys()].sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
  return {
    title: 'Per-treatment means with 95 % confidence intervals (t distribution)',
    headers: ['treatment', 'levels', ...metrics],
    rows: ids.map((id) => [id, levels.get(id) ?? '', ...metrics.map((m) => byT.get(id)!.get(m) ?? '–')]),
    note: ids.length ? undefined : 'no completed migrations',
    caption: run.manifest.factors ? `Factors: ${Object.keys(run.manifest.factors).join(', ') || 'none'}.` : undefined,
  };
}

export function mainEffectsTable(a: AnalysisResult): Table {
  const rows: string[][] = [];
  for (const t of a.variability)
    for (const e of t.mainEffects) {
      rows.push([t.metric, e.factor, e.levels.map((l) => `${l.level}: ${num(l.mean)}`).join('; '), num(e.spread), num(e.ratio)]);
    }
  return {
    title: 'Main effects (mean response per factor level)',
    headers: ['response', 'factor', 'level means (ms)', 'spread (max − min)', 'max:min'],
    rows,
    note: rows.length ? undefined : 'no factors varied in this run',
  };
}

export function planTable(a: AnalysisResult): Table {
  return {
    title: 'Migration plans (Kherbache et al., Table 1)',
    headers: ['treatment', 'plan', 'reps', 'completion (s)', 'mean duration (s)', 'sd duration (s)', 'energy (J)', 'peak power (W)'],
    rows: a.plans.plans.map((p) => [
      p.treatment,
      p.label,
      String(p.reps),
      num(p.completionS),
      num(p.meanDurationS),
      num(p.sdDurationS),
      num(p.energyJ),
      num(p.peakPowerW),
    ]),
    note: a.plans.plans.length ? undefined : a.plans.note,
  };
}

/** Per-treatment energy and peak power (treatments.jsonl; peak from the power samples where present). */
export function treatmentEnergyTable(a: AnalysisResult): Table {
  return {
    title: 'Energy and peak power per treatment',
    caption:
      'Energy above idle summed over the hosts for the whole treatment; coverage is the lowest share of the interval covered by power readings.',
    headers: ['treatment', 'migrations (completed)', 'energy (J)', 'coverage', 'peak power (W)'],
    rows: a.treatments.map((t) => [
      t.treatment,
      `${t.migrations} (${t.completed})`,
      num(t.energyJ),
      t.coverage === null ? '–' : pct(t.coverage),
      num(t.peakPowerW),
    ]),
    note: a.treatments.length ? undefined : 'no treatments.jsonl (a run without a power source, or written before it existed)',
  };
}

/** What analysis skipped or doubts, by file and line: damaged lines, damaged manifest pieces, suspect values. */
export function problemsTable(run: RunDir): Table {
  const truncated = run.problems.filter((p) => p.kind === 'truncated').length;
  return {
    title: 'Problems in the run directory',
    caption: truncated ? `${truncated} truncated last line(s) (a crash mid-write) skipped.` : undefined,
    headers: ['where', 'kind', 'problem'],
    rows: run.problems.map((p) => {
      const t = problemText(run, p);
      const at = t.indexOf(': ');
      return [t.slice(0, at), p.kind, t.slice(at + 2)];
    }),
    note: 'none: every line read',
  };
}

export function allTables(run: RunDir, a: AnalysisResult): Table[] {
  return [
    runInfo(run, a),
    problemsTable(run),
    energyTable(a.energy.pooled, a.energy.perWorkload, a.energy.lowCoverage),
    treatmentEnergyTable(a),
    hotColdTable(a),
    predictionSummary(a),
    predictionRows(a),
    variabilitySummary(a),
    mainEffectsTable(a),
    planTable(a),
    perTreatmentTable(run, a),
  ];
}
