/** Markdown rendering of the report's tables (the summary next to the HTML). */
import type { Table } from './tables.ts';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function tableMarkdown(t: Table): string {
  const out = [`## ${t.title}`, ''];
  if (t.rows.length === 0) return [...out, `_${t.note ?? 'no data'}_`, ''].join('\n');
  if (t.caption) out.push(t.caption, '');
  const headers = t.headers.every((h) => h === '') ? t.headers.map((_, i) => (i === 0 ? 'item' : 'value')) : t.headers;
  out.push(`| ${headers.map(cell).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`);
  for (const r of t.rows) out.push(`| ${r.map(cell).join(' | ')} |`);
  return [...out, ''].join('\n');
}

export function reportMarkdown(
  title: string,
  tables: readonly Table[],
  figureNotes: readonly string[],
  timeline?: { title: string; drawn: boolean; note: string; caption: string },
): string {
  return [
    `# ${title}`,
    '',
    ...tables.map(tableMarkdown),
    ...(timeline
      ? [
          '## Timeline',
          '',
          timeline.drawn ? `${timeline.title}: see index.html.` : `_Omitted: ${timeline.note}._`,
          '',
          timeline.caption,
          '',
        ]
      : []),
    ...(figureNotes.length ? ['## Figures', '', ...figureNotes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}
