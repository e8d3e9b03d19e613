/** Builds <runDir>/report/{index.html, summary.md} from a run directory. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeRun, type AnalysisResult, type AnalyzeOptions } from '../analyze.ts';
import type { RunDir } from '../rundir.ts';
import { reportHtml, type RenderedFigure } from './html.ts';
import { reportMarkdown } from './markdown.ts';
import { figures } from './plots.ts';
import { renderSvg } from './svg.ts';
import { allTables } from './tables.ts';

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
  writeFileSync(html, reportHtml(title, summary, figs, detail));
  const notes = figs.map((f) => (f.svg ? `${f.title}: see index.html` : `${f.title}: omitted (${f.note})`));
  writeFileSync(markdown, reportMarkdown(title, summary, notes));
  return { html, markdown, figures: figs.map((f) => ({ title: f.title, rendered: f.svg !== null, note: f.note })) };
}
