/**
 * CSV export: migrations.csv plus one CSV per sample measurement
 * (tags and fields flattened to columns), streamed so large runs fit in memory.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { streamSamples, type Migration, type RunDir } from './rundir.ts';

/** A plain decimal number (negative and exponent forms included): safe as a cell, and kept as a number. */
const PLAIN_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * One CSV cell. Text starting with =, +, - or @ would be run as a formula
 * by spreadsheet programs (CSV injection via a workload label, a failure
 * reason): it gets a leading single quote, plain numbers excepted.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !(typeof v === 'number' || PLAIN_NUMBER.test(s))) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const MIGRATION_COLUMNS: (keyof Migration | 'plan_kind' | 'plan_action_id' | 'plan_start_ms' | 'plan_end_ms')[] = [
  'id',
  'treatment',
  'rep',
  'vm',
  'src',
  'dst',
  'status',
  'reason',
  'partial',
  'plan_kind',
  'plan_action_id',
  'plan_start_ms',
  'plan_end_ms',
  't_cmd',
  't_stop',
  't_resume',
  't_done',
  'total_ms',
  'downtime_reported_ms',
  'downtime_event_ms',
  'downtime_observed_ms',
  'preop_ms',
  'postop_ms',
  'transferred_bytes',
  'passes',
  'setup_ms',
  'energy_j',
  'energy_coverage',
  'link_rate_mbit',
  'memory_mib',
  'workload',
  'downtime_limit_ms',
  'healthy',
  'attempt',
];

export function migrationsCsv(run: RunDir): string {
  const factorCols = Object.keys(run.manifest.factors);
  const levels = new Map(run.manifest.treatments.map((t) => [t.id, t.levels]));
  const lines = [[...MIGRATION_COLUMNS, ...factorCols].map(csvCell).join(',')];
  for (const m of run.migrations) {
    const rec: Record<string, unknown> = {
      ...m,
      plan_kind: m.plan?.kind,
      plan_action_id: m.plan?.action_id,
      plan_start_ms: m.plan?.start_ms,
      plan_end_ms: m.plan?.end_ms,
    };
    const lv = levels.get(m.treatment) ?? {};
    lines.push([...MIGRATION_COLUMNS.map((c) => csvCell(rec[c])), ...factorCols.map((f) => csvCell(lv[f]))].join(','));
  }
  return lines.join('\n') + '\n';
}

/**
 * Writes migrations.csv and <measurement>.csv files into outDir; returns the
 * paths. Columns of a measurement are its tags and fields, discovered in a
 * first pass so every row has the same header.
 */
export async function exportCsv(run: RunDir, outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const migPath = join(outDir, 'migrations.csv');
  const fd = openSync(migPath, 'w');
  writeSync(fd, migrationsCsv(run));
  closeSync(fd);
  const cols = new Map<string, { tags: Set<string>; fields: Set<string> }>();
  await streamSamples(run, (s) => {
    let c = cols.get(s.measurement);
    if (!c) cols.set(s.measurement, (c = { tags: new Set(), fields: new Set() }));
    for (const k in s.tags) c.tags.add(k);
    for (const k in s.fields) c.fields.add(k);
  });
  const writers = new Map<string, { fd: number; tags: string[]; fields: string[]; buf: string[] }>();
  const paths = [migPath];
  for (const [m, c] of cols) {
    const path = join(outDir, `${m.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`);
    const w = { fd: openSync(path, 'w'), tags: [...c.tags].sort(), fields: [...c.fields].sort(), buf: [] as string[] };
    writeSync(w.fd, ['t', ...w.tags, ...w.fields].map(csvCell).join(',') + '\n');
    writers.set(m, w);
    paths.push(path);
  }
  const flush = (w: { fd: number; buf: string[] }) => {
    if (w.buf.length) writeSync(w.fd, w.buf.join('\n') + '\n');
    w.buf = [];
  };
  await streamSamples(run, (s) => {
    const w = writers.get(s.measurement)!;
    w.buf.push([csvCell(s.t), ...w.tags.map((k) => csvCell(s.tags[k])), ...w.fields.map((k) => csvCell(s.fields[k]))].join(','));
    if (w.buf.length >= 5000) flush(w);
  });
  for (const w of writers.values()) {
    flush(w);
    closeSync(w.fd);
  }
  return paths;
}
