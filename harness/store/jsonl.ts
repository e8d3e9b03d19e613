import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Append-only JSON Lines file. Each record is written with a single write()
 * of one complete line on an O_APPEND descriptor, so a crash can never leave
 * half a line behind another writer's line; readers skip a torn last line.
 */
export class JsonlWriter {
  private fd: number;
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }
  append(record: unknown): void {
    writeSync(this.fd, JSON.stringify(record) + '\n');
  }
  appendMany(records: readonly unknown[]): void {
    if (records.length === 0) return;
    writeSync(this.fd, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  sync(): void {
    fsyncSync(this.fd);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Appends one line to a file without keeping it open. */
export function appendJsonl(path: string, record: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, JSON.stringify(record) + '\n');
}

/** Reads a JSON Lines file; a torn (unterminated, unparsable) last line is ignored. */
export function readJsonl<T = unknown>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const out: T[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      if (i === lines.length - 1) break; // crash mid-write of the last line
      throw new Error(`${path}:${i + 1}: not valid JSON: ${(e as Error).message}`);
    }
  }
  return out;
}
