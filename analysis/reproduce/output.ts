/**
 * findings.json (validated with its schema before it is written), its
 * Markdown twin (findings.md) and the table `migbench reproduce` prints.
 */
import { join, relative } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../harness/util/atomic-write.ts';
import {
  FINDINGS_SCHEMA_VERSION,
  FindingsFileSchema,
  VERDICTS,
  type Finding,
  type FindingsFile,
} from '../../harness/store/schema/findings.ts';
import type { StudyData } from './common.ts';
import type { Study } from './studies.ts';

export interface FindingsInput {
  study: Study;
  quick: boolean;
  dir: string;
  data: StudyData;
  findings: Finding[];
  wallS: number | null;
  now?: Date;
}

export function findingsFile(p: FindingsInput): FindingsFile {
  return FindingsFileSchema.parse({
    schema_version: FINDINGS_SCHEMA_VERSION,
    study: p.study.name,
    seed: p.study.seed,
    title: p.study.title,
    quick: p.quick,
    evaluated: (p.now ?? new Date()).toISOString(),
    runs: p.data.runs.map((r) => relative(p.dir, r.run.dir) || '.'),
    wall_s: p.wallS,
    findings: p.findings,
  });
}

export function writeFindings(dir: string, f: FindingsFile): { json: string; md: string } {
  const json = join(dir, 'findings.json');
  const md = join(dir, 'findings.md');
  writeJsonAtomic(json, f);
  writeFileAtomic(md, findingsMarkdown(f));
  return { json, md };
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function findingsMarkdown(f: FindingsFile): string {
  const head = `# ${f.study} (seed ${f.seed})${f.quick ? ' --quick' : ''}\n\n${f.title}\n\n`;
  const rows = f.findings.map(
    (x) => `| ${cell(x.claim)} | ${cell(x.paper)} | ${cell(x.measured)} | **${x.verdict}** | ${cell(x.reason)} |`,
  );
  return `${head}| finding | paper | here | verdict | why |\n|---|---|---|---|---|\n${rows.join('\n')}\n\n${summaryLine(f.findings)}\n`;
}

export function summaryLine(fs: readonly Finding[]): string {
  return VERDICTS.map((v) => [v, fs.filter((x) => x.verdict === v).length] as const)
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines.join(`\n${indent}`);
}

/** The terminal table: one block per finding (verdict first), wrapped to `width`. */
export function findingsTable(f: FindingsFile, width = 110): string {
  const vw = Math.max(...VERDICTS.map((v) => v.length));
  const ind = ' '.repeat(vw + 4);
  const out = [`${f.study} (seed ${f.seed})${f.quick ? ', quick' : ''}: ${f.title}`, ''];
  for (const x of f.findings) {
    out.push(`  ${x.verdict.padEnd(vw)}  ${wrap(x.claim, width - ind.length, ind)}`);
    out.push(`${ind}paper: ${wrap(x.paper, width - ind.length - 7, ind + '       ')}`);
    out.push(`${ind}here:  ${wrap(x.measured, width - ind.length - 7, ind + '       ')}`);
    out.push(`${ind}why:   ${wrap(x.reason, width - ind.length - 7, ind + '       ')}`);
  }
  out.push('', summaryLine(f.findings));
  return out.join('\n');
}
