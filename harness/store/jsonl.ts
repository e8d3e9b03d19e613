import { isAscii } from 'node:buffer';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage } from '../util/errors.ts';

/** A line a reader skipped, located by file and 1-based line number. */
export interface LineProblem {
  file: string;
  line: number;
  /** truncated: an unterminated last line (crash mid-write); garbage: not JSON; null: a `null` line; invalid: fails the schema. */
  kind: 'truncated' | 'garbage' | 'null' | 'invalid';
  message: string;
}

/** An append that did not reach the disk whole; the file was cut back to where the line started. */
export class JsonlAppendError extends Error {
  constructor(
    readonly path: string,
    readonly code: string,
    detail: string,
  ) {
    super(`${path}: record not written (${detail})`);
    this.name = 'JsonlAppendError';
  }
}

/**
 * Offset just past the last '\n' (0 if none), scanning back from the end:
 * what remains after cutting an unterminated tail (a record torn by a crash,
 * or the NUL blocks a power loss leaves).
 */
function lastLineEnd(fd: number, size: number): number {
  const buf = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const n = readSync(fd, buf, 0, end - start, start);
    const i = buf.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/**
 * Append-only JSON Lines file. Each record is one write() of one complete
 * line on an O_APPEND descriptor; a short or failed write (disk full) cuts
 * the file back to where the line started and throws, so the file only ever
 * holds whole lines. On open, an unterminated tail left by a crash is cut
 * first (`repaired` says how much), so new records never land after it.
 */
export class JsonlWriter {
  private fd: number;
  /** Set when open cut a torn tail: its size and where the file now ends. */
  readonly repaired: { droppedBytes: number; at: number } | null = null;

  constructor(
    readonly path: string,
    log?: (line: string) => void,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a+');
    const size = fstatSync(this.fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(this.fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        const at = lastLineEnd(this.fd, size);
        ftruncateSync(this.fd, at);
        fsyncSync(this.fd);
        this.repaired = { droppedBytes: size - at, at };
        log?.(`${path}: cut an unterminated tail of ${size - at} bytes (a record torn by a crash) before appending`);
      }
    }
  }

  append(record: unknown): void {
    this.writeWhole(JSON.stringify(record) + '\n');
  }

  appendMany(records: readonly unknown[]): void {
    if (records.length === 0) return;
    this.writeWhole(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }

  /** Writes all of `text` or, on any failure, nothing (the file is cut back to its previous end). */
  private writeWhole(text: string): void {
    const buf = Buffer.from(text, 'utf8');
    const start = fstatSync(this.fd).size;
    let done = 0;
    try {
      while (done < buf.length) {
        const n = writeSync(this.fd, buf, done, buf.length - done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        done += n;
      }
    } catch (e) {
      const code = String((e as NodeJS.ErrnoException).code ?? 'EIO');
      let cut = `cut back to ${start} bytes`;
      try {
        ftruncateSync(this.fd, start);
      } catch (te) {
        cut = `and cutting the partial line back failed: ${errorMessage(te)}`;
      }
      throw new JsonlAppendError(this.path, code, `${done} of ${buf.length} bytes written: ${errorMessage(e)}; ${cut}`);
    }
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Appends one line to a file without keeping it open (whole line or nothing). */
export function appendJsonl(path: string, record: unknown): void {
  const w = new JsonlWriter(path);
  try {
    w.append(record);
  } finally {
    w.close();
  }
}

export type ParsedLine = { ok: true; value: unknown } | { ok: false; kind: LineProblem['kind']; message: string };

/**
 * Classifies one line. `unterminated` marks the file's last line when no
 * '\n' follows it: if it does not parse, a crash cut it (truncated), which
 * is expected and only counted; anywhere else a bad line is damage.
 */
export function parseJsonlLine(text: string, unterminated: boolean): ParsedLine | null {
  const line = text.endsWith('\r') ? text.slice(0, -1) : text;
  if (line.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    if (unterminated)
      return {
        ok: false,
        kind: 'truncated',
        message: `unterminated last line of ${line.length} bytes (cut by a crash mid-write); skipped`,
      };
    // eslint-disable-next-line no-control-regex
    if (/^\u0000+$/.test(line)) return { ok: false, kind: 'garbage', message: `${line.length} NUL bytes (left by a power loss?); skipped` };
    return { ok: false, kind: 'garbage', message: `not valid JSON (${(e as Error).message}); skipped` };
  }
  if (value === null) return { ok: false, kind: 'null', message: 'the line is null, not a record; skipped' };
  if (typeof value !== 'object' || Array.isArray(value))
    return {
      ok: false,
      kind: 'invalid',
      message: `expected a JSON object, found ${Array.isArray(value) ? 'an array' : typeof value}; skipped`,
    };
  return { ok: true, value };
}

/** Splits file text into lines with their number and whether the last one lacks its '\n'. */
export function* jsonlLines(text: string): Generator<{ text: string; line: number; unterminated: boolean }> {
  const lines = text.split('\n');
  const terminated = text.endsWith('\n');
  const n = terminated ? lines.length - 1 : lines.length;
  for (let i = 0; i < n; i++) yield { text: lines[i], line: i + 1, unterminated: !terminated && i === n - 1 };
}

/**
 * The same as jsonlLines, streamed from a file with a callback per line
 * (sample files hold millions of lines; no per-line promise or object).
 * `afterChunk`, when given, is awaited after the lines of each chunk read
 * (up to 1 MiB), so a consumer can pause reading, e.g. until a stream drains.
 * Chunks are cut after their last '\n' byte (never inside a UTF-8 sequence)
 * and decoded in pieces of whole lines (PIECE); an all-ASCII chunk, the
 * usual case, is decoded as latin1: the same text as UTF-8 decoding, in
 * cheaper one-byte strings.
 */
export async function forEachJsonlLine(
  path: string,
  onLine: (text: string, line: number, unterminated: boolean) => void,
  afterChunk?: () => Promise<void> | void,
): Promise<void> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(1 << 20);
    // bytes of an unfinished line carried over from the previous read, at the start of buf
    let have = 0;
    let line = 0;
    for (;;) {
      if (have === buf.length) {
        // a line longer than the buffer: grow it
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, have, buf.length - have, null);
      if (bytesRead === 0) break;
      const end = have + bytesRead;
      const last = buf.lastIndexOf(0x0a, end - 1);
      if (last >= 0) {
        const ascii = isAscii(buf.subarray(0, last + 1));
        // decoded in pieces of whole lines of about PIECE bytes (see PIECE)
        for (let start = 0; start <= last;) {
          let stop = last + 1;
          if (start + PIECE < stop) {
            stop = buf.lastIndexOf(0x0a, start + PIECE - 1) + 1;
            if (stop <= start) stop = buf.indexOf(0x0a, start + PIECE) + 1; // one line longer than a piece
          }
          const text = ascii ? buf.toString('latin1', start, stop) : buf.toString('utf8', start, stop);
          let from = 0;
          for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', from)) {
            onLine(text.slice(from, i), ++line, false);
            from = i + 1;
          }
          start = stop;
        }
        buf.copy(buf, 0, last + 1, end);
        have = end - last - 1;
      } else have = end;
      if (afterChunk) await afterChunk();
    }
    if (have > 0) onLine(decodeLines(buf, have), ++line, true);
  } finally {
    await fh.close();
  }
}

/**
 * Bytes of lines decoded into one string. A string of a whole 1 MiB chunk is
 * made external or in large-object space, and cutting a million lines from
 * such strings measured 5-10x slower (0.26-0.6 s vs 0.05 s for 170 MB on
 * node 20) than from strings of 64 KiB, which V8 allocates in its ordinary heap.
 */
const PIECE = 64 * 1024;

/** buf[0, end) as text: latin1 when all ASCII (identical text, one-byte string), else UTF-8. */
function decodeLines(buf: Buffer, end: number): string {
  return isAscii(buf.subarray(0, end)) ? buf.toString('latin1', 0, end) : buf.toString('utf8', 0, end);
}

/** Reports a skipped line on stderr when the caller does not collect them. */
function warnLine(p: LineProblem): void {
  process.stderr.write(`${p.file}:${p.line}: ${p.message}\n`);
}

/**
 * Reads a JSON Lines file. Bad lines are skipped and reported (to
 * `onProblem`, else stderr), never thrown: one torn record must not make
 * the rest of a run unreadable.
 */
export function readJsonl<T = unknown>(path: string, onProblem: (p: LineProblem) => void = warnLine): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const l of jsonlLines(readFileSync(path, 'utf8'))) {
    const r = parseJsonlLine(l.text, l.unterminated);
    if (r === null) continue;
    if (r.ok) out.push(r.value as T);
    else onProblem({ file: path, line: l.line, kind: r.kind, message: r.message });
  }
  return out;
}
