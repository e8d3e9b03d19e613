/** Builds <runDir>/report/{index.html, summary.md} from a run directory. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { analyzeRun, type AnalysisResult, type AnalyzeOptions } from '../analyze.ts';
import type { RunDir } from '../rundir.ts';
import { reportHtml, type RenderedFigure, type TimelineSection } from './html.ts';
import { reportMarkdown } from './markdown.ts';
import { figures } from './plots.ts';
import { renderSvg } from './svg.ts';
import { allTables } from './tables.ts';
import { collectTimelineSamples, migrationTimeline, representativeMigration, timelineEmpty } from '../timeline.ts';
import { timelineSvg } from './timeline-plot.ts';

export interface ReportFiles {
  html: string;
  markdown: string;
  figures: { title: string; rendered: boolean; note: string }[];
}

export async function renderFigures(a: AnalysisResult): Promise<RenderedFigure[]> {
  const out: RenderedFigure[] = [];
  for (const f of figures(a)) out.push({ title: f.title, svg: f.spec ? await renderSvg(f.spec) : null, note: f.emptyNote });
  return out;
}

/** The report's timeline: the completed migration with the median total time (else the first one started). */
export async function timelineSection(run: RunDir): Promise<TimelineSection> {
  const m = representativeMigration(run);
  const other = run.migrations.find((x) => x.id !== m?.id && x.t_cmd)?.id ?? '<migration id>';
  // the run directory by name only: the report stays the same wherever the run is read from
  const caption =
    `Plot any other migration with: migbench plot <runDir> <id>, e.g. migbench plot .../${basename(run.dir)} ${other} ` +
    '(ids: the id field of migrations.jsonl; default output <runDir>/timeline-<id>.svg, --out name.png for a PNG).';
  if (!m) return { title: 'Timeline', svg: null, note: 'no migration in this run was started', caption };
  const done = run.migrations.filter((x) => x.status === 'completed' && !x.partial && x.total_ms !== null).length;
  const why =
    m.status === 'completed' && !m.partial
      ? `the completed migration with the median total time (${((m.total_ms ?? 0) / 1000).toFixed(2)} s) of ${done}`
      : `no migration completed; the first one started (${m.status})`;
  const tl = migrationTimeline(m, await collectTimelineSamples(run, m));
  const title = `Timeline of migration ${m.id}: ${why}`;
  if (timelineEmpty(tl))
    return {
      title,
      svg: null,
      note: `migration ${m.id} has no progress, probe, dirty rate or power samples in this run directory`,
      caption,
    };
  return { title, svg: await timelineSvg(tl), note: '', caption };
}

export async function writeReport(
  run: RunDir,
  outDir = join(run.dir, 'report'),
  opts: AnalyzeOptions & { analysis?: AnalysisResult } = {},
): Promise<ReportFiles> {
  const a = opts.analysis ?? (await analyzeRun(run, opts));
  const tables = allTables(run, a);
  const figs = await renderFigures(a);
  const title = `migbench report: ${run.manifest.name}`;
  mkdirSync(outDir, { recursive: true });
  const html = join(outDir, 'index.html');
  const markdown = join(outDir, 'summary.md');
  // Per-treatment and per-migration detail go after the figures.
  const detail = tables.filter((t) => t.title.startsWith('Per-treatment') || t.title.startsWith('Predicted vs observed per'));
  const summary = tables.filter((t) => !detail.includes(t));
  const timeline = await timelineSection(run);
  writeFileSync(html, reportHtml(title, summary, figs, detail, timeline));
  const notes = figs.map((f) => (f.svg ? `${f.title}: see index.html` : `${f.title}: omitted (${f.note})`));
  writeFileSync(markdown, reportMarkdown(title, summary, notes, { ...timeline, drawn: timeline.svg !== null }));
  return { html, markdown, figures: figs.map((f) => ({ title: f.title, rendered: f.svg !== null, note: f.note })) };
}
