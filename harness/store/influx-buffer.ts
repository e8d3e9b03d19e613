import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl } from './jsonl.ts';
import type { Sample } from './sample.ts';

/**
 * Batches that could not be sent to InfluxDB, kept on disk in order:
 * one segment file per batch (<dir>/0000000001.jsonl, ...), each written to a
 * temporary name and renamed, so a segment is either complete or absent.
 * A segment is removed only after InfluxDB acknowledged it.
 */
export class InfluxDiskBuffer {
  private seq: number;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    const segs = this.segments();
    this.seq = segs.length ? Number(segs[segs.length - 1].slice(0, 10)) : 0;
  }

  /** Segment names, oldest first. */
  segments(): string[] {
    return readdirSync(this.dir)
      .filter((f) => /^\d{10}\.jsonl$/.test(f))
      .sort();
  }

  get empty(): boolean {
    return this.segments().length === 0;
  }

  append(batch: readonly Sample[]): void {
    if (batch.length === 0) return;
    this.seq += 1;
    const name = `${String(this.seq).padStart(10, '0')}.jsonl`;
    const tmp = join(this.dir, `.${name}.tmp`);
    writeFileSync(tmp, batch.map((s) => JSON.stringify(s)).join('\n') + '\n');
    renameSync(tmp, join(this.dir, name));
  }

  read(segment: string): Sample[] {
    return readJsonl<Sample>(join(this.dir, segment));
  }

  remove(segment: string): void {
    rmSync(join(this.dir, segment), { force: true });
  }

  /** Points waiting on disk. */
  pendingPoints(): number {
    return this.segments().reduce((n, s) => n + this.read(s).length, 0);
  }
}
