import { existsSync, mkdirSync } from 'node:fs';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { join, resolve } from 'node:path';
import { JsonlAppendError, JsonlWriter } from '../store/jsonl.ts';
import type { CampaignState, Manifest, MigrationRecord, PlanLine, Sample, TimingLine, TreatmentLine } from '../store/schema/index.ts';

/**
 * A run directory: everything analysis needs, and nothing it must ask the
 * testbed for. Records are appended whole or not at all (JsonlWriter); JSON
 * documents are replaced atomically. The file formats are the schemas in
 * harness/store/schema, which analysis reads with.
 */
export class RunDir {
  private writers = new Map<string, JsonlWriter>();
  /** Extra consumers of every sample (e.g. the InfluxDB sink). */
  private sampleSinks: Array<(s: Sample) => void> = [];
  /** Samples that could not be appended (disk full), per file relative to the run directory. */
  readonly samplesNotRecorded: Record<string, number> = {};
  private log: (line: string) => void;

  constructor(
    readonly path: string,
    log?: (line: string) => void,
  ) {
    this.log = log ?? ((l) => process.stderr.write(l + '\n'));
    mkdirSync(join(path, 'samples'), { recursive: true });
  }

  static create(baseDir: string, name: string, start = new Date(), log?: (line: string) => void): RunDir {
    // 2026-11-22T00-10-05Z-quickstart: sortable, no ':' (portable file names)
    const stamp = start
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replace(/:/g, '-');
    let dir = resolve(baseDir, `${stamp}-${name}`);
    for (let i = 2; existsSync(dir); i++) dir = resolve(baseDir, `${stamp}-${name}-${i}`);
    return new RunDir(dir, log);
  }

  setLog(log: (line: string) => void): void {
    this.log = log;
  }

  writeJson(file: string, doc: unknown): void {
    writeJsonAtomic(join(this.path, file), doc);
  }

  writeManifest(m: Manifest): void {
    this.writeJson('manifest.json', m);
  }

  writeState(s: CampaignState): void {
    this.writeJson('state.json', s);
  }

  private writer(rel: string): JsonlWriter {
    let w = this.writers.get(rel);
    if (!w) {
      // opening cuts a tail torn by an earlier crash, so appends never follow a fragment
      w = new JsonlWriter(join(this.path, rel), this.log);
      this.writers.set(rel, w);
    }
    return w;
  }

  /** Throws JsonlAppendError (file unchanged) when the record cannot be written whole. */
  appendMigration(record: MigrationRecord): void {
    const w = this.writer('migrations.jsonl');
    w.append(record);
    w.sync(); // one migration is minutes of work: make it durable at once
  }

  /** One line per executed plan (a repetition of a treatment): action times, completion. */
  appendPlan(record: PlanLine): void {
    const w = this.writer('plans.jsonl');
    w.append(record);
    w.sync();
  }

  /** A span the runner measured between migrations (duty cycle); not synced: losing the last few costs only the breakdown. */
  appendTiming(record: TimingLine): void {
    this.writer('timing.jsonl').append(record);
  }

  /** Per-treatment totals (energy per host, peak power), one line each. */
  appendTreatment(record: TreatmentLine): void {
    const w = this.writer('treatments.jsonl');
    w.append(record);
    w.sync();
  }

  /**
   * Samples go to samples/<measurement>.jsonl. A batch that cannot be
   * written (disk full) is dropped whole and counted, never torn, and does
   * not throw: samples arrive from timers and event handlers where a throw
   * would be an uncaught exception; the migration records, which stop the
   * campaign when they cannot be written, are what must not be lost.
   */
  appendSamples(samples: readonly Sample[]): void {
    const by = new Map<string, Sample[]>();
    for (const s of samples) {
      const list = by.get(s.measurement) ?? [];
      list.push(s);
      by.set(s.measurement, list);
    }
    for (const [m, list] of by) {
      const rel = join('samples', `${m}.jsonl`);
      try {
        this.writer(rel).appendMany(list);
      } catch (e) {
        if (!(e instanceof JsonlAppendError)) throw e;
        if (!this.samplesNotRecorded[rel]) this.log(`samples not recorded from now on while writing fails: ${e.message}`);
        this.samplesNotRecorded[rel] = (this.samplesNotRecorded[rel] ?? 0) + list.length;
      }
    }
    for (const sink of this.sampleSinks) for (const s of samples) sink(s);
  }

  onSample(sink: (s: Sample) => void): void {
    this.sampleSinks.push(sink);
  }

  close(): void {
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
  }
}

export { iso } from '../util/time.ts';
