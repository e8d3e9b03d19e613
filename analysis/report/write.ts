/** Builds <runDir>/report/{index.html, summary.md} from a run directory. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { analyzeRun, type AnalysisResult, type AnalyzeOptions } from '../analyze.ts';
import type { RunDir } from '../rundir.ts';
import { assembleReportHtml, reportHtmlParts, type RenderedFigure, type ReportHtmlParts, type TimelineSection } from './html.ts';
import { reportMarkdown } from './markdown.ts';
import { figures } from './plots.ts';
import { renderSvg } from './svg.ts';
import { SvgRenderError, type SvgRenderer } from './svg-renderer.ts';
import { allTables } from './tables.ts';
import { collectTimelineSamples, migrationTimeline, representativeMigration, timelineEmpty } from '../timeline.ts';
import { timelineSpec } from './timeline-plot.ts';

export interface ReportFiles {
  html: string;
  markdown: string;
  figures: { title: string; rendered: boolean; note: string }[];
}

/** A figure or the timeline before rendering: its spec, or null and the note why it is omitted. */
interface Drawing {
  title: string;
  spec: TopLevelSpec | null;
  note: string;
}
type TimelineDrawing = Drawing & { caption: string };

function figureDrawings(a: AnalysisResult): Drawing[] {
  return figures(a).map((f) => ({ title: f.title, spec: f.spec, note: f.emptyNote }));
}

export async function renderFigures(a: AnalysisResult): Promise<RenderedFigure[]> {
  const out: RenderedFigure[] = [];
  for (const f of figureDrawings(a)) out.push({ title: f.title, svg: f.spec ? await renderSvg(f.spec) : null, note: f.note });
  return out;
}

/** The report's timeline: the completed migration with the median total time (else the first one started). */
export async function timelineSection(run: RunDir): Promise<TimelineSection> {
  const t = await timelineDrawing(run);
  return { title: t.title, svg: t.spec ? await renderSvg(t.spec) : null, note: t.note, caption: t.caption };
}

async function timelineDrawing(run: RunDir): Promise<TimelineDrawing> {
  const m = representativeMigration(run);
  const other = run.migrations.find((x) => x.id !== m?.id && x.t_cmd)?.id ?? '<migration id>';
  // the run directory by name only: the report stays the same wherever the run is read from
  const caption =
    `Plot any other migration with: migbench plot <runDir> <id>, e.g. migbench plot .../${basename(run.dir)} ${other} ` +
    '(ids: the id field of migrations.jsonl; default output <runDir>/timeline-<id>.svg, --out name.png for a PNG).';
  if (!m) return { title: 'Timeline', spec: null, note: 'no migration in this run was started', caption };
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
      spec: null,
      note: `migration ${m.id} has no progress, probe, dirty rate or power samples in this run directory`,
      caption,
    };
  return { title, spec: timelineSpec(tl), note: '', caption };
}

/** A drawing's SVG, and as UTF-8 (encoded as it arrives, while the worker draws the next one). */
type Svg = { text: string; bytes: Buffer };
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
const svgOf = (text: string): Svg => ({ text, bytes: Buffer.from(text) });

/**
 * The report's drawings (figures, then the timeline) and their SVGs. With a
 * renderer each drawing goes to its worker when added, and the worker draws
 * them one at a time in that order while this thread goes on; without one
 * (or when its worker cannot start or dies: a warning says so) they are
 * drawn here, in the same order, when asked for. A spec vega rejects fails
 * the report, naming the figure.
 */
class Drawings {
  private readonly list: Drawing[] = [];
  private readonly pending: Promise<Settled<Svg>>[] = [];

  constructor(private readonly renderer: SvgRenderer | undefined) {}

  add(d: Drawing): void {
    this.list.push(d);
    if (this.renderer && d.spec) this.pending.push(settle(this.renderer.render([d.spec]).then(([svg]) => svgOf(svg))));
  }

  /** The SVG of each drawing, null for those without a spec. */
  async svgs(): Promise<(Svg | null)[]> {
    const drawn = this.list.filter((d) => d.spec);
    let out: Svg[] = [];
    let failed: unknown = null;
    for (const [i, p] of this.pending.entries()) {
      const r = await p;
      if (r.ok) out.push(r.value);
      else if (r.error instanceof SvgRenderError)
        throw new Error(`report figure '${drawn[i].title}': vega could not render it: ${r.error.reason}`, { cause: r.error });
      else failed ??= r.error;
    }
    if (!this.renderer || failed) {
      if (failed)
        process.emitWarning(
          `SVG render worker failed (${failed instanceof Error ? failed.message : String(failed)}); drawing the report's figures in this thread`,
        );
      // the same SVGs as the worker's when this thread has drawn nothing before (vega's ids count per thread)
      out = [];
      for (const d of drawn) out.push(svgOf(await renderSvg(d.spec!)));
    }
    let i = 0;
    return this.list.map((d) => (d.spec ? out[i++] : null));
  }
}

/**
 * index.html as bytes: the page is laid out with a marker in place of each
 * SVG and encoded (while the SVGs are drawn), then the SVGs' bytes go in.
 * Encoding the ~5 MB page as one string (it has non-ASCII characters) took
 * ~0.1 s; in parts, ~10 ms. The same bytes as assembleReportHtml's page.
 */
function htmlBytes(parts: ReportHtmlParts, figs: readonly Drawing[], timeline: TimelineDrawing) {
  // the drawing's index in the marker: the page has the timeline before the figures
  const mark = `\u0000svg-${randomUUID()}-`;
  const page = (svg: (d: Drawing, i: number) => string | null) =>
    assembleReportHtml(
      parts,
      figs.map((f, i) => ({ title: f.title, svg: svg(f, i), note: f.note })),
      { title: timeline.title, svg: svg(timeline, figs.length), note: timeline.note, caption: timeline.caption },
    );
  // text, index, text, index, ..., text
  const pieces = page((d, i) => (d.spec ? `${mark}${i}\u0000` : null)).split(new RegExp(`${mark}(\\d+)\u0000`));
  const text = pieces.filter((_, k) => k % 2 === 0).map((t) => Buffer.from(t));
  const at = pieces.filter((_, k) => k % 2 === 1).map(Number);
  return (svgs: readonly (Svg | null)[]): Buffer => {
    const drawn = at.map((i) => svgs[i]);
    // an empty SVG would be laid out as an omitted figure: then the page is built from the strings
    if (drawn.length !== svgs.filter((s) => s !== null).length || drawn.some((s) => !s?.text))
      return Buffer.from(page((_d, i) => svgs[i]?.text ?? null));
    return Buffer.concat(text.flatMap((t, k) => (k < drawn.length ? [t, drawn[k]!.bytes] : [t])));
  };
}

/**
 * Writes the report. With `opts.renderer` (started early, see
 * svg-renderer.ts) the SVGs are drawn in its worker while this thread builds
 * the tables, the markdown and the HTML around them; the files are the same
 * as without it, when a fresh renderer is given one report.
 */
export async function writeReport(
  run: RunDir,
  outDir = join(run.dir, 'report'),
  opts: AnalyzeOptions & { analysis?: AnalysisResult; renderer?: SvgRenderer } = {},
): Promise<ReportFiles> {
  const a = opts.analysis ?? (await analyzeRun(run, opts));
  const drawings = new Drawings(opts.renderer);
  const figs = figureDrawings(a);
  for (const f of figs) drawings.add(f);
  const timeline = await timelineDrawing(run);
  drawings.add(timeline);
  const tables = allTables(run, a);
  const title = `migbench report: ${run.manifest.name}`;
  const html = join(outDir, 'index.html');
  const markdown = join(outDir, 'summary.md');
  // Per-treatment and per-migration detail go after the figures.
  const detail = tables.filter((t) => t.title.startsWith('Per-treatment') || t.title.startsWith('Predicted vs observed per'));
  const summary = tables.filter((t) => !detail.includes(t));
  const mdOf = (drawn: (i: number) => boolean) =>
    reportMarkdown(
      title,
      summary,
      figs.map((f, i) => (drawn(i) ? `${f.title}: see index.html` : `${f.title}: omitted (${f.note})`)),
      { ...timeline, drawn: drawn(figs.length) },
    );
  // built while the SVGs are drawn: a drawing has an SVG when it has a spec (if one came back empty: again below)
  let md = mdOf((i) => (i < figs.length ? figs[i] : timeline).spec !== null);
  const page = htmlBytes(reportHtmlParts(title, summary, detail), figs, timeline);
  const svgs = await drawings.svgs();
  if (svgs.some((s) => s?.text === '')) md = mdOf((i) => !!svgs[i]?.text);
  // both files once every figure is drawn: a figure vega rejects leaves neither
  mkdirSync(outDir, { recursive: true });
  writeFileSync(html, page(svgs));
  writeFileSync(markdown, md);
  return { html, markdown, figures: figs.map((f, i) => ({ title: f.title, rendered: !!svgs[i]?.text, note: f.note })) };
}
