/** Self-contained HTML report: tables plus inline SVG figures, no external assets. */
import type { Table } from './tables.ts';

const SPECIAL = /[&<>"]/;
const ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

export function esc(s: string): string {
  // most cells hold none of these: no replace (and no function call per match) for them
  return SPECIAL.test(s) ? s.replace(/[&<>"]/g, (c) => ENTITY[c]) : s;
}

export function tableHtml(t: Table): string {
  const head = `<h2>${esc(t.title)}</h2>`;
  if (t.rows.length === 0) return `${head}\n<p class="note">${esc(t.note ?? 'no data')}</p>`;
  const cap = t.caption ? `<p class="caption">${esc(t.caption)}</p>` : '';
  const th = t.headers.some((h) => h !== '') ? `<thead><tr>${t.headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` : '';
  const body = t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `${head}\n${cap}\n<table>${th}<tbody>\n${body}\n</tbody></table>`;
}

export interface RenderedFigure {
  title: string;
  svg: string | null;
  note: string;
}

export function figureHtml(f: RenderedFigure): string {
  return f.svg
    ? `<figure><figcaption>${esc(f.title)}</figcaption>${f.svg}</figure>`
    : `<h3>${esc(f.title)}</h3><p class="note">Omitted: ${esc(f.note)}.</p>`;
}

/** The timeline of one migration: its own section, with how to plot any other one. */
export interface TimelineSection extends RenderedFigure {
  caption: string;
}

export function timelineHtml(t: TimelineSection): string {
  const body = t.svg ? `<figure><figcaption>${esc(t.title)}</figcaption>${t.svg}</figure>` : `<p class="note">Omitted: ${esc(t.note)}.</p>`;
  return `<h2>Timeline</h2>\n<p class="caption">${esc(t.caption)}</p>\n${body}`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}.note{color:#777;font-style:italic}.caption{color:#555;font-size:13px}
figure{margin:1em 0 2em}figcaption{font-weight:600;margin-bottom:.3em}details{margin:1em 0}`;

export function reportHtml(
  title: string,
  summaryTables: readonly Table[],
  figures: readonly RenderedFigure[],
  detailTables: readonly Table[],
  timeline?: TimelineSection,
): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(title)}</h1>
${summaryTables.map(tableHtml).join('\n')}
${timeline ? timelineHtml(timeline) : ''}
<h2>Figures</h2>
${figures.map(figureHtml).join('\n')}
${detailTables.map((t) => `<details open><summary>${esc(t.title)}</summary>${tableHtml(t)}</details>`).join('\n')}
</body></html>
`;
}
