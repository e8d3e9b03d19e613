/**
 * The nightly report: tonight's verdict and what changed against the
 * baseline, the findings, failures with reasons, steps found over the
 * history, and per treatment and metric the trend of nightly medians with
 * their spread (quartile band), the baseline night and flagged steps marked.
 * Written as index.html (inline SVG) and summary.md next to each other;
 * reuses the analysis report's table renderers and SVG helper read-only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { reportHtml, type RenderedFigure } from '../report/html.ts';
import { reportMarkdown } from '../report/markdown.ts';
import { renderSvg } from '../report/svg.ts';
import type { Table } from '../report/tables.ts';
import type { NumericMetric } from '../rundir.ts';
import { describeFailures, type CompareResult } from '../compare.ts';
import { isEnvironmentChange, type Night } from './history.ts';

export interface NightlyReportInput {
  night: Night;
  history: readonly Night[];
  compare: CompareResult | null;
  metrics: readonly NumericMetric[];
}

const fmt = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  return Math.abs(x) >= 1e5 ? x.toExponential(3) : x.toPrecision(4);
};
const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %` : String(x));

/** One line per thing a reader must know first: verdict, baseline, what changed, findings. */
export function headline(n: Night): string[] {
  const out = [`night ${n.id}: ${n.verdict.toUpperCase()} (exit ${n.exit_code})`];
  if (n.reason) out.push(n.reason);
  if (n.baseline) out.push(`baseline: ${n.baseline}${n.baseline_pinned ? ' (pinned)' : ' (last night that passed)'}`);
  const env = n.env_changes.filter(isEnvironmentChange);
  if (env.length) out.push(`environment changed since the baseline: ${env.join('; ')}`);
  const other = n.env_changes.filter((c) => !isEnvironmentChange(c));
  if (other.length) out.push(`also changed: ${other.join('; ')}`);
  if (n.spec_changes.length) out.push(`spec changed since the baseline: ${n.spec_changes.join('; ')}`);
  for (const f of n.findings) out.push(`${f.verdict.toUpperCase()} ${f.metric} [${f.scenario}]: ${f.detail}`);
  for (const c of n.changes.filter((x) => x.night === n.id)) out.push(`step at this night: ${c.metric} [${c.scenario}] ${pct(c.rel)}`);
  return out;
}

function tables(inp: NightlyReportInput): { summary: Table[]; detail: Table[] } {
  const n = inp.night;
  const summary: Table[] = [
    { title: 'Tonight', headers: ['', ''], rows: headline(n).map((l, i) => [i === 0 ? 'verdict' : '', l]) },
    {
      title: 'Environment',
      headers: ['', 'tonight', 'what changed against the baseline'],
      rows: [
        ['run directory', n.run_dir ?? '–', ''],
        ['date', n.date, ''],
        ['harness commit', n.env.harness_commit ?? 'unknown', ''],
        ['QEMU', n.env.qemu_version ?? 'unknown', ''],
        ['host kernel', n.env.host_kernel ?? 'unknown', ''],
        ['accelerator', n.env.accelerator ?? 'unknown', ''],
        ['hosts', n.env.hosts.join(', ') || 'unknown', ''],
      ].map((r) => {
        const hit = n.env_changes.find((c) => c.toLowerCase().startsWith(r[0] === 'hosts' ? 'host set' : r[0].toLowerCase()));
        return [r[0], r[1], hit ?? ''];
      }),
    },
  ];
  const detail: Table[] = [];
  if (inp.compare) {
    detail.push({
      title: `Comparison with the baseline ${n.baseline}`,
      headers: ['verdict', 'metric', 'scenario', 'n base/cand', 'median base', 'median tonight', 'change', 'p', 'min p'],
      rows: inp.compare.rows.map((x) => [
        x.verdict,
        x.metric,
        x.scenario,
        `${x.nBaseline}/${x.nCandidate}`,
        fmt(x.medianBaseline),
        fmt(x.medianCandidate),
        pct(x.relChange),
        fmt(x.p),
        fmt(x.minP),
      ]),
      caption:
        `threshold ${(inp.compare.threshold * 100).toFixed(1)} %, alpha ${inp.compare.alpha}; "insufficient" = an effect beyond the threshold ` +
        'that the repetitions cannot test (counted as a failure)',
    });
  }
  detail.push({
    title: 'Failed and cancelled migrations tonight',
    headers: ['scenario', 'failures'],
    rows: n.treatments.filter((t) => t.failures.failed + t.failures.cancelled > 0).map((t) => [t.scenario, describeFailures(t.failures)]),
    note: 'none',
  });
  detail.push({
    title: 'Step changes over the history',
    headers: ['first night', 'metric', 'scenario', 'before', 'after', 'size', 'coincides with'],
    rows: n.changes.map((c) => [c.night, c.metric, c.scenario, fmt(c.before), fmt(c.after), pct(c.rel), c.coincides.join('; ')]),
    note: 'no step beyond the threshold',
  });
  detail.push({
    title: 'Nights',
    headers: ['#', 'night', 'date', 'verdict', 'baseline', 'QEMU', 'host kernel', 'accel', 'failures', 'findings / reason'],
    rows: [...inp.history, n].map((h, i) => [
      String(i + 1),
      h.id,
      h.date,
      h.verdict,
      h.baseline ?? '–',
      h.env.qemu_version ?? '?',
      h.env.host_kernel ?? '?',
      h.env.accelerator ?? '?',
      String(h.treatments.reduce((s, t) => s + t.failures.failed + t.failures.cancelled, 0)),
      h.findings.length ? h.findings.map((f) => `${f.metric} ${f.verdict}`).join(', ') : (h.reason ?? ''),
    ]),
  });
  return { summary, detail };
}

/** Vega-lite spec of one treatment x metric trend; null when fewer than one night has the metric. */
export function trendSpec(
  nights: readonly Night[],
  key: string,
  metric: NumericMetric,
  baseline: string | null,
  steps: readonly string[],
): TopLevelSpec | null {
  const values = nights.flatMap((n, i) => {
    const m = n.treatments.find((t) => t.key === key)?.metrics[metric];
    return m ? [{ night: i + 1, id: n.id, median: m.median, q1: m.q1, q3: m.q3, verdict: n.verdict }] : [];
  });
  if (values.length === 0) return null;
  const marks = [
    ...(baseline ? [{ night: nights.findIndex((n) => n.id === baseline) + 1, what: 'baseline' }] : []),
    ...steps.map((s) => ({ night: nights.findIndex((n) => n.id === s) + 1, what: 'step' })),
  ].filter((m) => m.night > 0);
  const x = { field: 'night', type: 'quantitative' as const, title: 'night #', axis: { tickMinStep: 1 } };
  return {
    width: 520,
    height: 180,
    layer: [
      {
        data: { values },
        mark: { type: 'area', opacity: 0.25 },
        encoding: { x, y: { field: 'q1', type: 'quantitative', title: metric, scale: { zero: false } }, y2: { field: 'q3' } },
      },
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'median', type: 'quantitative' }, tooltip: [{ field: 'id' }, { field: 'median' }] },
      },
      ...(marks.length
        ? [
            {
              data: { values: marks },
              mark: { type: 'rule' as const, strokeDash: [4, 3] },
              encoding: {
                x,
                color: { field: 'what', type: 'nominal' as const, scale: { domain: ['baseline', 'step'], range: ['#2a9d2a', '#d62728'] } },
              },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
}

export interface NightlyReportFiles {
  html: string;
  markdown: string;
}

export async function writeNightlyReport(outDir: string, inp: NightlyReportInput): Promise<NightlyReportFiles> {
  mkdirSync(outDir, { recursive: true });
  const nights = [...inp.history, inp.night];
  const { summary, detail } = tables(inp);
  const figures: RenderedFigure[] = [];
  const keys = new Map<string, string>();
  for (const n of nights) for (const t of n.treatments) keys.set(t.key, t.scenario);
  for (const [key, scenario] of keys) {
    for (const metric of inp.metrics) {
      const steps = inp.night.changes.filter((c) => c.metric === metric && c.scenario === scenario).map((c) => c.night);
      const spec = trendSpec(nights, key, metric, inp.night.baseline ?? (inp.night.verdict === 'pass' ? inp.night.id : null), steps);
      if (!spec) continue;
      const title = `${metric}, ${scenario}: nightly median and quartiles (green: baseline, red: step)`;
      try {
        figures.push({ title, svg: await renderSvg(spec), note: '' });
      } catch (e) {
        figures.push({ title, svg: null, note: `could not render (${(e as Error).message})` });
      }
    }
  }
  const title = `migbench nightly ${inp.night.id}: ${inp.night.verdict}`;
  const html = join(outDir, 'index.html');
  const markdown = join(outDir, 'summary.md');
  writeFileSync(html, reportHtml(title, summary, figures, detail));
  writeFileSync(
    markdown,
    reportMarkdown(
      title,
      [...summary, ...detail],
      figures.filter((f) => !f.svg).map((f) => `${f.title}: ${f.note}`),
    ),
  );
  return { html, markdown };
}
