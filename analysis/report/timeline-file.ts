/**
 * `migbench plot <runDir> <migrationId>`: writes the timeline of one
 * migration as SVG, or as PNG through a headless Chromium when the output
 * name ends in .png and one is installed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../../harness/util/errors.ts';
import { haveCommand, run } from '../../harness/util/exec.ts';
import type { RunDir } from '../rundir.ts';
import { collectTimelineSamples, findMigration, migrationTimeline, timelineEmpty, type Timeline } from '../timeline.ts';
import { timelineSvg } from './timeline-plot.ts';

const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome'];

/** The timeline of migration `id` of a run; UserError for an unknown id or a migration never started. */
export async function loadTimeline(run: RunDir, id: string): Promise<Timeline> {
  const found = findMigration(run, id);
  if (!found.migration) throw new UserError(found.error);
  const m = found.migration;
  if (!m.t_cmd)
    throw new UserError(
      `migration ${id} has no t_cmd in ${run.dir}/migrations.jsonl: its migrate command was never sent, so it has no timeline`,
    );
  return migrationTimeline(m, await collectTimelineSamples(run, m));
}

/** Width and height of an SVG's root element (vega writes both). */
function svgSize(svg: string): { w: number; h: number } {
  const head = /<svg[^>]*>/.exec(svg)?.[0] ?? '';
  const w = Number(/\bwidth="([\d.]+)"/.exec(head)?.[1] ?? 1000);
  const h = Number(/\bheight="([\d.]+)"/.exec(head)?.[1] ?? 1000);
  return { w: Math.ceil(w), h: Math.ceil(h) };
}

async function svgToPng(svg: string, out: string): Promise<void> {
  let browser: string | undefined;
  for (const b of BROWSERS) if (await haveCommand(b)) browser = b;
  if (!browser)
    throw new UserError(
      `writing ${out} needs a headless Chromium (apt-get install chromium); or write SVG: --out ${out.replace(/\.png$/i, '.svg')}`,
    );
  const tmp = mkdtempSync(join(tmpdir(), 'migbench-plot-'));
  try {
    const page = join(tmp, 'timeline.html');
    writeFileSync(page, `<!doctype html><html><body style="margin:0;background:#fff">${svg}</body></html>`);
    const { w, h } = svgSize(svg);
    await run(
      browser,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        `--user-data-dir=${join(tmp, 'profile')}`,
        `--screenshot=${out}`,
        `--window-size=${w},${h}`,
        `file://${page}`,
      ],
      { timeoutMs: 60_000 },
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Writes the timeline of migration `id` to `out` (default <runDir>/timeline-<id>.svg) and returns the path and the timeline. */
export async function writeTimeline(run: RunDir, id: string, out?: string): Promise<{ path: string; timeline: Timeline }> {
  const timeline = await loadTimeline(run, id);
  if (timelineEmpty(timeline))
    throw new UserError(
      `migration ${id} has no samples to draw (no progress, probe, dirty rate or power samples around it in ${run.dir}/samples)`,
    );
  const path = out ?? join(run.dir, `timeline-${id.replace(/[^\w.-]/g, '_')}.svg`);
  const svg = await timelineSvg(timeline);
  mkdirSync(dirname(path), { recursive: true });
  if (/\.png$/i.test(path)) await svgToPng(svg, path);
  else writeFileSync(path, svg);
  return { path, timeline };
}
