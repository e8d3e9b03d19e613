import { existsSync, mkdirSync } from 'node:fs';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { join, resolve } from 'node:path';
import { JsonlWriter } from '../store/jsonl.ts';
import type { Sample } from '../store/sample.ts';

/**
 * A run directory: everything analysis needs, and nothing it must ask the
 * testbed for. Records are appended whole; JSON documents are replaced
 * atomically.
 */
export class RunDir {
  private writers = new Map<string, JsonlWriter>();
  /** Extra consumers of every sample (e.g. the InfluxDB sink). */
  private sampleSinks: Array<(s: Sample) => void> = [];

  constructor(readonly path: string) {
    mkdirSync(join(path, 'samples'), { recursive: true });
  }

  static create(baseDir: string, name: string, start = new Date()): RunDir {
    // 2026-11-22T00-10-05Z-quickstart: sortable, no ':' (portable file names)
    const stamp = start.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    let dir = resolve(baseDir, `${stamp}-${name}`);
    for (let i = 2; existsSync(dir); i++) dir = resolve(baseDir, `${stamp}-${name}-${i}`);
    return new RunDir(dir);
  }

  writeJson(file: string, doc: unknown): void {
    writeJsonAtomic(join(this.path, file), doc);
  }

  private writer(rel: string): JsonlWriter {
    let w = this.writers.get(rel);
    if (!w) {
      w = new JsonlWriter(join(this.path, rel));
      this.writers.set(rel, w);
    }
    return w;
  }

  appendMigration(record: unknown): void {
    const w = this.writer('migrations.jsonl');
    w.append(record);
    w.sync(); // one migration is minutes of work: make it durable at once
  }

  /** One line per executed plan (a repetition of a treatment): action times, completion. */
  appendPlan(record: unknown): void {
    const w = this.writer('plans.jsonl');
    w.append(record);
    w.sync();
  }

  /** Per-treatment totals (energy per host, peak power), one line each. */
  appendTreatment(record: unknown): void {
    const w = this.writer('treatments.jsonl');
    w.append(record);
    w.sync();
  }

  /** Samples go to samples/<measurement>.jsonl. */
  appendSamples(samples: readonly Sample[]): void {
    const by = new Map<string, Sample[]>();
    for (const s of samples) {
      const list = by.get(s.measurement) ?? [];
      list.push(s);
      by.set(s.measurement, list);
    }
    for (const [m, list] of by) this.writer(join('samples', `${m}.jsonl`)).appendMany(list);
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
