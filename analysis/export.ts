/**
 * CSV export: migrations.csv plus one CSV per sample measurement
 * (tags and fields flattened to columns). Streamed: rows go out through
 * write streams in batches of at most BATCH_CHARS characters, and reading
 * pauses while a stream's buffer is full, so memory stays bounded whatever
 * the size of the run; no file is ever held whole as a string.
 */
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { NUMERIC_METRICS, streamSamples, type Migration, type RunDir } from './rundir.ts';
import type { Sample } from '../harness/store/schema/index.ts';

/** A plain decimal number (negative and exponent forms included): safe as a cell, and kept as a number. */
const PLAIN_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * One CSV cell. Text starting with =, +, - or @ would be run as a formula
 * by spreadsheet programs (CSV injection via a workload label, a failure
 * reason): it gets a leading single quote, plain numbers excepted.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  // a number's text never needs quotes, and numbers are exempt from the formula guard
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  const c = s.charCodeAt(0);
  // = + - @ TAB CR
  if ((c === 0x3d || c === 0x2b || c === 0x2d || c === 0x40 || c === 0x09 || c === 0x0d) && !PLAIN_NUMBER.test(s)) s = `'${s}`;
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const NEEDS_QUOTES = /[",\n\r]/;

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
  ...NUMERIC_METRICS,
  'energy_coverage',
  'link_rate_mbit',
  'memory_mib',
  'workload',
  'downtime_limit_ms',
  'healthy',
  'attempt',
];

/** migrations.csv line by line (header first), each with its '\n'. */
export function* migrationsCsvLines(run: RunDir): Generator<string> {
  const factorCols = Object.keys(run.manifest.factors);
  const levels = new Map(run.manifest.treatments.map((t) => [t.id, t.levels]));
  yield [...MIGRATION_COLUMNS, ...factorCols].map(csvCell).join(',') + '\n';
  for (const m of run.migrations) {
    const rec: Record<string, unknown> = {
      ...m,
      plan_kind: m.plan?.kind,
      plan_action_id: m.plan?.action_id,
      plan_start_ms: m.plan?.start_ms,
      plan_end_ms: m.plan?.end_ms,
    };
    const lv = levels.get(m.treatment) ?? {};
    yield [...MIGRATION_COLUMNS.map((c) => csvCell(rec[c])), ...factorCols.map((f) => csvCell(lv[f]))].join(',') + '\n';
  }
}

/** migrations.csv as one string (small runs and tests; exportCsv streams it). */
export function migrationsCsv(run: RunDir): string {
  return [...migrationsCsvLines(run)].join('');
}

/** Characters gathered before one write() to a stream. */
const BATCH_CHARS = 1 << 16;

/** A CSV file written through a stream in batches, with backpressure. */
class CsvWriter {
  private out: WriteStream;
  private batch = '';
  private full = false;
  private failed: Error | null = null;
  constructor(readonly path: string) {
    this.out = createWriteStream(path);
    this.out.on('error', (e) => (this.failed = e));
  }
  /** Queues one line (with its '\n'); the caller awaits drain() when it can pause. */
  line(text: string): void {
    this.batch += text;
    if (this.batch.length >= BATCH_CHARS) this.flush();
  }
  private flush(): void {
    if (this.batch === '') return;
    if (!this.out.write(this.batch)) this.full = true;
    this.batch = '';
  }
  /** Resolves when the stream has room again (at once when it has). */
  async drain(): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.full) return;
    this.full = false;
    await once(this.out, 'drain'); // rejects on 'error'
    if (this.failed) throw this.failed;
  }
  async close(): Promise<void> {
    this.flush();
    if (this.failed) throw this.failed;
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
  /** Stops writing (after an error elsewhere); the partial file is left for the caller to remove. */
  destroy(): void {
    this.out.destroy();
  }
}

interface MeasurementOut {
  w: CsvWriter;
  tags: string[];
  fields: string[];
  tagSet: Set<string>;
  fieldSet: Set<string>;
  /** A key appeared after rows were written with fewer columns: the file is rewritten in a second pass. */
  grew: boolean;
}

/**
 * csvCell of strings that repeat (tag values: a few hosts, treatments,
 * repetitions over millions of rows), each worked out once; bounded, since a
 * tag can also be unique per row.
 */
class CellCache {
  private map = new Map<string, string>();
  cell(v: unknown): string {
    if (typeof v !== 'string') return csvCell(v);
    let c = this.map.get(v);
    if (c === undefined) {
      c = csvCell(v);
      if (this.map.size >= 100_000) this.map.clear();
      this.map.set(v, c);
    }
    return c;
  }
}

function sampleRow(s: Sample, tags: readonly string[], fields: readonly string[], cells: CellCache): string {
  let row = csvCell(s.t);
  for (const k of tags) row += ',' + cells.cell(s.tags[k]);
  for (const k of fields) row += ',' + csvCell(s.fields[k]);
  return row + '\n';
}

const headerLine = (m: Pick<MeasurementOut, 'tags' | 'fields'>) => ['t', ...m.tags, ...m.fields].map(csvCell).join(',') + '\n';

/**
 * Writes migrations.csv and <measurement>.csv files into outDir; returns the
 * paths. Columns of a measurement are all its tags and fields, sorted. One
 * pass over the samples: a measurement's header is taken from its first
 * sample; should a later sample bring a key the header lacks, that file alone
 * is written again in a second pass with the complete header.
 */
export async function exportCsv(run: RunDir, outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const migPath = join(outDir, 'migrations.csv');
  const open: CsvWriter[] = [];
  try {
    const mw = new CsvWriter(migPath);
    open.push(mw);
    let n = 0;
    for (const l of migrationsCsvLines(run)) {
      mw.line(l);
      if (++n % 1000 === 0) await mw.drain();
    }
    await mw.close();

    const outs = new Map<string, MeasurementOut>();
    const cells = new CellCache();
    const paths = [migPath];
    const fileOf = (m: string) => join(outDir, `${m.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`);
    const pending: CsvWriter[] = [];
    const drainAll = async () => {
      for (const w of pending) await w.drain();
    };
    await streamSamples(
      run,
      (s) => {
        let o = outs.get(s.measurement);
        if (!o) {
          const tagSet = new Set(Object.keys(s.tags)),
            fieldSet = new Set(Object.keys(s.fields));
          const w = new CsvWriter(fileOf(s.measurement));
          open.push(w);
          pending.push(w);
          o = { w, tags: [...tagSet].sort(), fields: [...fieldSet].sort(), tagSet, fieldSet, grew: false };
          o.w.line(headerLine(o));
          outs.set(s.measurement, o);
          paths.push(w.path);
        }
        for (const k in s.tags)
          if (!o.tagSet.has(k)) {
            o.tagSet.add(k);
            o.grew = true;
          }
        for (const k in s.fields)
          if (!o.fieldSet.has(k)) {
            o.fieldSet.add(k);
            o.grew = true;
          }
        if (!o.grew) o.w.line(sampleRow(s, o.tags, o.fields, cells));
      },
      undefined,
      drainAll,
    );
    for (const o of outs.values()) await o.w.close();

    // measurements whose columns grew after their first sample: written again with every column
    const redo = new Map([...outs].filter(([, o]) => o.grew));
    if (redo.size) {
      for (const o of redo.values()) {
        o.tags = [...o.tagSet].sort();
        o.fields = [...o.fieldSet].sort();
        o.w = new CsvWriter(o.w.path);
        open.push(o.w);
        o.w.line(headerLine(o));
      }
      const again = [...redo.values()].map((o) => o.w);
      await streamSamples(
        run,
        (s) => {
          const o = redo.get(s.measurement);
          if (o) o.w.line(sampleRow(s, o.tags, o.fields, cells));
        },
        undefined,
        async () => {
          for (const w of again) await w.drain();
        },
      );
      for (const o of redo.values()) await o.w.close();
    }
    return paths;
  } catch (e) {
    for (const w of open) w.destroy();
    throw e;
  }
}
