/**
 * Loads a run directory (manifest.json, migrations.jsonl, plans.jsonl,
 * treatments.jsonl, state.json, samples/*.jsonl) with the schemas the harness
 * writes by (harness/store/schema). Damage is reported, not fatal: a torn
 * last line is skipped and counted, every other bad line (garbage, `null`, a
 * record failing the schema) is skipped and listed with file, line and field
 * in `problems`, which the analysis output and the report show. Samples are
 * streamed, never slurped: a campaign can hold millions of readings.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { isAscii } from 'node:buffer';
import type { z } from 'zod';
import { forEachJsonlLine, jsonlLines, parseJsonlLine, type LineProblem } from '../harness/store/jsonl.ts';
import {
  CampaignStateSchema,
  issueText,
  isSample,
  MANIFEST_SCHEMA_VERSION,
  ManifestSchema,
  MigrationRecordSchema,
  PlanLineSchema,
  SampleSchema,
  TreatmentEntrySchema,
  TreatmentLineSchema,
  type CampaignState,
  type Manifest as ManifestFile,
  type ManifestFields,
  type MigrationRecord,
  type PlanLine,
  type Sample,
  type TreatmentLine,
} from '../harness/store/schema/index.ts';
import { UserError } from '../harness/util/errors.ts';
import { fastNumber, fastSample, SampleLineCache, type NumberLine } from './load-sample-line.ts';

export type { CompareSettings, MigrationStatus, PlanRef, PlanLine, TreatmentLine } from '../harness/store/schema/index.ts';

export type Level = string | number | boolean;

export interface Treatment {
  id: string;
  levels: Record<string, Level>;
  workload?: string;
}

/** The manifest as analysis uses it: factor levels flattened to Level. */
export type Manifest = Omit<ManifestFields, 'factors' | 'treatments'> & {
  factors: Record<string, Level[]>;
  treatments: Treatment[];
};

/** A migration record as read (defaults filled for fields older harnesses did not write). */
export type Migration = MigrationRecord;

export { NUMERIC_METRICS, type NumericMetric } from '../harness/store/schema/migration.ts';
import { NUMERIC_METRICS } from '../harness/store/schema/migration.ts';

/** Durations that cannot be negative (the metrics in ms); a negative one (a clock step?) is warned about. */
const DURATION_FIELDS = NUMERIC_METRICS.filter((f) => f.endsWith('_ms'));

/**
 * Something wrong in the run directory that analysis worked around. `line`
 * is null for whole-file or manifest problems. Kinds from the line reader,
 * plus manifest (a damaged manifest piece) and warning (kept, but suspect).
 */
export interface Problem {
  file: string;
  line: number | null;
  kind: LineProblem['kind'] | 'manifest' | 'warning';
  message: string;
}

export interface RunDir {
  dir: string;
  /** Layout version of the run directory (manifest schema_version; 1 when absent). */
  schemaVersion: number;
  manifest: Manifest;
  migrations: Migration[];
  /** plans.jsonl: one line per executed plan (empty in older run directories). */
  plans: PlanLine[];
  /** treatments.jsonl: per-treatment energy and peak power. */
  treatmentTotals: TreatmentLine[];
  state: CampaignState | null;
  /** Files under samples/, absolute paths. */
  sampleFiles: string[];
  /** Grows while samples are streamed (bad sample lines are found then). */
  problems: Problem[];
}

/** At most this many bad lines per sample file are listed; the rest are counted. */
const LISTED_PER_FILE = 20;

/** "file:line: message", the file relative to the run directory. */
export function problemText(run: Pick<RunDir, 'dir'>, p: Problem): string {
  const f = relative(run.dir, p.file) || p.file;
  return `${f}${p.line !== null ? `:${p.line}` : ''}: ${p.message}`;
}

export function truncatedLines(run: RunDir): number {
  return run.problems.filter((p) => p.kind === 'truncated').length;
}

function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readText(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}); is this a migbench run directory?`);
  }
}

/** A factor level as analysis handles it: objects (e.g. a whole plan) become compact JSON text. */
export function toLevel(v: unknown): Level {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v);
}

function levelsRecord(v: Record<string, unknown>): Record<string, Level> {
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toLevel(x)]));
}

/**
 * Parses an object key by key, so one damaged field is one problem and a
 * default, not a lost manifest. Keys the schema does not know are kept.
 */
function parseFieldwise<S extends z.ZodObject>(
  schema: S,
  raw: Record<string, unknown>,
  report: (field: string, msg: string) => void,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const [k, field] of Object.entries(schema.shape) as [string, z.ZodType][]) {
    const r = field.safeParse(raw[k]);
    if (r.success) {
      if (r.data === undefined) delete out[k];
      else out[k] = r.data;
      continue;
    }
    report(k, issueText(r.error));
    const d = field.safeParse(undefined);
    if (d.success && d.data !== undefined) out[k] = d.data;
    else delete out[k];
  }
  return out;
}

/** Reads manifest.json; refuses a newer layout; damaged pieces become problems. */
export function readManifest(path: string, problems: Problem[]): { manifest: Manifest; schemaVersion: number } {
  const raw = readJsonFile(path);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UserError(`${path}: expected a JSON object; is this a migbench run directory?`);
  const m = raw as Record<string, unknown>;
  const problem = (message: string) => problems.push({ file: path, line: null, kind: 'manifest', message });
  const v = m.schema_version;
  if (typeof v === 'number' && Number.isInteger(v) && v > MANIFEST_SCHEMA_VERSION) {
    throw new UserError(
      `${path}: written by a newer migbench (schema ${v}); upgrade migbench to analyse it (this version reads schema ${MANIFEST_SCHEMA_VERSION} and older)`,
    );
  }
  const input: Record<string, unknown> = { ...m };
  // the compare settings lived only in the spec before they were copied to the manifest
  if (input.compare === undefined && typeof m.spec === 'object' && m.spec !== null)
    input.compare = (m.spec as Record<string, unknown>).compare;
  for (const key of ['factors', 'treatments'] as const) if (m[key] === undefined) problem(`${key}: missing; analysed as empty`);
  if (Array.isArray(m.treatments)) {
    // one damaged treatment entry costs that entry, not the manifest
    input.treatments = m.treatments.filter((t, i) => {
      const r = TreatmentEntrySchema.safeParse(t);
      if (!r.success) problem(`treatments[${i}]: ${t === null ? 'null instead of a treatment' : issueText(r.error)}; skipped`);
      return r.success;
    });
  }
  const parsed = parseFieldwise(ManifestSchema, input, (field, msg) =>
    problem(`${field}: ${msg.replace(/^\S+: /, '')} (${field === 'name' ? 'using "unnamed"' : 'ignored'})`),
  );
  const file = parsed as ManifestFile & Record<string, unknown>;
  const manifest: Manifest = {
    ...file,
    name: typeof file.name === 'string' ? file.name : 'unnamed',
    factors: Object.fromEntries(Object.entries(file.factors ?? {}).map(([k, xs]) => [k, xs.map(toLevel)])),
    treatments: (file.treatments ?? []).map((t) => ({ id: t.id, levels: levelsRecord(t.levels), workload: t.workload })),
    shaping_mechanisms: file.shaping_mechanisms ?? {},
  };
  return { manifest, schemaVersion: typeof file.schema_version === 'number' ? file.schema_version : 1 };
}

/**
 * A file's text as readFileSync(path, 'utf8') gives it; an all-ASCII file
 * (the usual case) is decoded as latin1: the same text, decoded several times
 * faster (measured 5-20 ms vs 45-180 ms for a 10 MB migrations.jsonl).
 */
export function readText(path: string): string {
  const b = readFileSync(path);
  return isAscii(b) ? b.toString('latin1') : b.toString('utf8');
}

/** Reads one JSONL file with a schema: good records out, bad lines into `problems`. */
export function readJsonlWith<S extends z.ZodType>(path: string, schema: S, problems: Problem[]): z.output<S>[] {
  if (!existsSync(path)) return [];
  const out: z.output<S>[] = [];
  for (const l of jsonlLines(readText(path))) {
    const r = parseJsonlLine(l.text, l.unterminated);
    if (r === null) continue;
    if (!r.ok) {
      problems.push({ file: path, line: l.line, kind: r.kind, message: r.message });
      continue;
    }
    const p = schema.safeParse(r.value);
    if (p.success) out.push(p.data);
    else problems.push({ file: path, line: l.line, kind: 'invalid', message: `${issueText(p.error)}; skipped` });
  }
  return out;
}

/** A migration record from a partial object (tests, synthetic data): absent required fields get neutral values. */
export function normalizeMigration(raw: Record<string, unknown>, line: number): Migration {
  return MigrationRecordSchema.parse({ id: `m${line}`, treatment: '', rep: 0, vm: '', src: '', dst: '', status: 'failed', ...raw });
}

function warnNegativeDurations(path: string, migrations: readonly Migration[], problems: Problem[]): void {
  migrations.forEach((m) => {
    const neg = DURATION_FIELDS.filter((f) => typeof m[f] === 'number' && (m[f] as number) < 0);
    if (neg.length) {
      problems.push({
        file: path,
        line: null,
        kind: 'warning',
        message: `migration ${m.id}: negative duration ${neg.map((f) => `${f}=${m[f]}`).join(', ')} (clock step?); analysed as recorded`,
      });
    }
  });
}

function readStateFile(path: string, problems: Problem[]): CampaignState | null {
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readText(path));
  } catch (e) {
    problems.push({ file: path, line: null, kind: 'garbage', message: `not valid JSON (${(e as Error).message}); campaign state ignored` });
    return null;
  }
  const r = CampaignStateSchema.safeParse(raw);
  if (r.success) return r.data;
  problems.push({ file: path, line: null, kind: 'invalid', message: `${issueText(r.error)}; campaign state ignored` });
  return null;
}

export function loadRunDir(dir: string): RunDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`run directory ${dir} does not exist; pass a directory under runs/ (e.g. runs/<UTC start>-<name>)`);
  }
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new UserError(`${dir} has no manifest.json; is it a migbench run directory?`);
  const problems: Problem[] = [];
  const { manifest, schemaVersion } = readManifest(manifestPath, problems);
  const migPath = join(dir, 'migrations.jsonl');
  const migrations = readJsonlWith(migPath, MigrationRecordSchema, problems);
  warnNegativeDurations(migPath, migrations, problems);
  const plans = readJsonlWith(join(dir, 'plans.jsonl'), PlanLineSchema, problems);
  const treatmentTotals = readJsonlWith(join(dir, 'treatments.jsonl'), TreatmentLineSchema, problems);
  const state = readStateFile(join(dir, 'state.json'), problems);
  const sdir = join(dir, 'samples');
  const sampleFiles = existsSync(sdir)
    ? readdirSync(sdir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
        .map((f) => join(sdir, f))
    : [];
  return { dir, schemaVersion, manifest, migrations, plans, treatmentTotals, state, sampleFiles, problems };
}

/** Migrations that count as observations: completed and not partial. */
export function observations(migrations: readonly Migration[]): Migration[] {
  return migrations.filter((m) => m.status === 'completed' && !m.partial);
}

/** Bad sample lines already reported per run (files are streamed more than once, e.g. by export). */
const seen = new WeakMap<RunDir, { keys: Set<string>; perFile: Map<string, number> }>();

function reportSampleProblem(run: RunDir, p: Problem): void {
  let s = seen.get(run);
  if (!s) seen.set(run, (s = { keys: new Set(), perFile: new Map() }));
  const key = `${p.file}:${p.line}`;
  if (s.keys.has(key)) return;
  s.keys.add(key);
  const n = (s.perFile.get(p.file) ?? 0) + 1;
  s.perFile.set(p.file, n);
  if (n <= LISTED_PER_FILE) {
    run.problems.push(p);
    return;
  }
  const more = `${n - LISTED_PER_FILE} more bad line(s) not listed; skipped`;
  const i = run.problems.findIndex((x) => x.file === p.file && x.line === null && x.message.endsWith('not listed; skipped'));
  const summary: Problem = { file: p.file, line: null, kind: 'invalid', message: more };
  if (i >= 0) run.problems[i] = summary;
  else run.problems.push(summary);
}

/**
 * Streams every sample of the run, calling `onSample` (with the file) for those whose
 * measurement is in `measurements` (all when omitted). Files are named by
 * measurement, so other files are not read; a cheap substring test skips
 * lines of other measurements before JSON.parse. Bad lines are skipped and
 * added to `run.problems` (a torn last line counted as truncated).
 * `afterChunk` is awaited after each chunk of lines (see forEachJsonlLine):
 * a consumer that writes what it reads pauses the reading there.
 * `keepLine`, when given, sees each line first: false skips it unparsed
 * (e.g. a time span test with lineTime); a skipped bad line is not reported.
 */
export function streamSamples(
  run: RunDir,
  onSample: (s: Sample, file: string) => void,
  measurements?: readonly string[],
  afterChunk?: () => Promise<void> | void,
  keepLine?: (text: string) => boolean,
): Promise<number> {
  return streamSampleLines(run, { onSample }, measurements, afterChunk, keepLine);
}

/**
 * streamSamples for a consumer of one-number readings (a campaign's million
 * power readings): a line in the harness's form whose fields are one plain
 * number goes to `onNumber` without a sample being made (see fastNumber;
 * numberSample(r) is the sample onSample would have had), every other line
 * to `onSample` as streamSamples gives it. `r` is overwritten by the next line.
 */
export async function streamSampleLines(
  run: RunDir,
  on: { onSample: (s: Sample, file: string) => void; onNumber?: (r: Readonly<NumberLine>, file: string) => void },
  measurements?: readonly string[],
  afterChunk?: () => Promise<void> | void,
  keepLine?: (text: string) => boolean,
): Promise<number> {
  const { onSample, onNumber } = on;
  let count = 0;
  const lineCache = new SampleLineCache();
  const needles = measurements?.map((m) => `"${m}"`);
  for (const file of run.sampleFiles) {
    if (measurements && !measurements.includes(basename(file, '.jsonl'))) continue;
    await forEachJsonlLine(
      file,
      (text, line, unterminated) => {
        if (keepLine && !unterminated && !keepLine(text)) return;
        // the harness's own lines without JSON.parse (their measurement is known exactly: no needle test needed)
        if (onNumber && !unterminated && fastNumber(text, lineCache)) {
          const r = lineCache.read;
          if (measurements && !measurements.includes(r.measurement)) return;
          count++;
          onNumber(r, file);
          return;
        }
        const fast = unterminated ? undefined : fastSample(text, lineCache);
        if (fast) {
          if (measurements && !measurements.includes(fast.measurement)) return;
          count++;
          onSample(fast, file);
          return;
        }
        // anything else (and a torn last line) the general way
        if (needles && !unterminated && !needles.some((n) => text.includes(n))) return;
        const r = parseJsonlLine(text, unterminated);
        if (r === null) return;
        if (!r.ok) {
          reportSampleProblem(run, { file, line, kind: r.kind, message: r.message });
          return;
        }
        let s: Sample;
        if (isSample(r.value)) {
          s = r.value;
          if (s.tags === undefined) s.tags = {};
        } else {
          const p = SampleSchema.safeParse(r.value);
          if (!p.success) {
            reportSampleProblem(run, { file, line, kind: 'invalid', message: `${issueText(p.error)}; skipped` });
            return;
          }
          s = p.data;
        }
        if (measurements && !measurements.includes(s.measurement)) return;
        count++;
        onSample(s, file);
      },
      afterChunk,
    );
  }
  return count;
}

/** Treatment levels by id (empty when the manifest does not list it). */
export function levelsOf(run: RunDir): Map<string, Record<string, Level>> {
  return new Map(run.manifest.treatments.map((t) => [t.id, t.levels]));
}

/** A RunDir held in memory (tests, synthetic analyses): absent parts empty. */
export function inMemoryRun(p: {
  dir?: string;
  manifest: Partial<Manifest> & { name: string };
  migrations?: Migration[];
  plans?: PlanLine[];
}): RunDir {
  const manifest: Manifest = {
    schema_version: MANIFEST_SCHEMA_VERSION,
    spec: {},
    factors: {},
    treatments: [],
    shaping_mechanisms: {},
    ...p.manifest,
  };
  return {
    dir: p.dir ?? '/nonexistent',
    schemaVersion: manifest.schema_version,
    manifest,
    migrations: p.migrations ?? [],
    plans: p.plans ?? [],
    treatmentTotals: [],
    state: null,
    sampleFiles: [],
    problems: [],
  };
}
