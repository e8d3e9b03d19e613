import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forEachJsonlLine, jsonlLines, JsonlWriter, readJsonl, type LineProblem } from './jsonl.ts';

const root = mkdtempSync(join(tmpdir(), 'mb-jsonl-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('JsonlWriter', () => {
  it('cuts a record torn by a crash before appending, so the next record starts on its own line', () => {
    const p = join(root, 'torn.jsonl');
    writeFileSync(p, '{"a":1}\n{"a":2}\n{"a":3,"b":"cut he');
    const notes: string[] = [];
    const w = new JsonlWriter(p, (l) => notes.push(l));
    expect(w.repaired).toEqual({ droppedBytes: 18, at: 16 });
    expect(notes[0]).toMatch(/cut an unterminated tail of 18 bytes/);
    w.append({ a: 4 });
    w.close();
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}\n{"a":2}\n{"a":4}\n');
  });

  it('cuts the NUL blocks a power loss leaves, and a file without any complete line', () => {
    const p = join(root, 'nul.jsonl');
    writeFileSync(p, Buffer.concat([Buffer.from('{"a":1}\n'), Buffer.alloc(70_000)]));
    const w = new JsonlWriter(p);
    expect(w.repaired).toEqual({ droppedBytes: 70_000, at: 8 });
    w.appendMany([{ a: 2 }, { a: 3 }]);
    w.close();
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}\n{"a":2}\n{"a":3}\n');
    const q = join(root, 'none.jsonl');
    writeFileSync(q, '{"half');
    const w2 = new JsonlWriter(q);
    expect(w2.repaired).toEqual({ droppedBytes: 6, at: 0 });
    w2.close();
    expect(readFileSync(q, 'utf8')).toBe('');
  });

  it('leaves a clean file alone', () => {
    const p = join(root, 'clean.jsonl');
    writeFileSync(p, '{"a":1}\n');
    const w = new JsonlWriter(p);
    expect(w.repaired).toBeNull();
    w.close();
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}\n');
  });
});

describe('readJsonl', () => {
  it('skips and reports bad lines with file and line instead of throwing', () => {
    const p = join(root, 'bad.jsonl');
    writeFileSync(p, '{"a":1}\nnot json\nnull\n\n{"a":2}\n{"a":');
    const problems: LineProblem[] = [];
    expect(readJsonl(p, (x) => problems.push(x))).toEqual([{ a: 1 }, { a: 2 }]);
    expect(problems.map((x) => `${x.line} ${x.kind}`)).toEqual(['2 garbage', '3 null', '6 truncated']);
    expect(problems.every((x) => x.file === p)).toBe(true);
  });
});

describe('forEachJsonlLine', () => {
  /** What the streamed reader gives must be what jsonlLines gives on the whole text. */
  async function both(name: string, content: Buffer) {
    const p = join(root, name);
    writeFileSync(p, content);
    const got: { text: string; line: number; unterminated: boolean }[] = [];
    let chunks = 0;
    await forEachJsonlLine(
      p,
      (text, line, unterminated) => got.push({ text, line, unterminated }),
      () => {
        chunks++;
      },
    );
    const text = readFileSync(p, 'utf8');
    // an empty file has no line here (jsonlLines gives one empty line: the readers skip it either way)
    expect(got).toEqual(text === '' ? [] : [...jsonlLines(text)]);
    return { got, chunks };
  }

  it('gives the lines of jsonlLines: ASCII, UTF-8 across 1 MiB reads, CRLF, an unterminated last line', async () => {
    const line = (i: number) => `{"i":${i},"s":"${i % 7 === 0 ? 'größe ✓ 😀' : 'plain'}"}`;
    const many = Array.from({ length: 60_000 }, (_, i) => line(i)).join('\n');
    // multi-byte characters land on every offset around the 1 MiB read boundaries somewhere in 60,000 lines
    const r = await both('utf8.jsonl', Buffer.from(many + '\n{"torn":'));
    expect(r.chunks).toBeGreaterThan(1);
    expect(r.got.at(-1)).toEqual({ text: '{"torn":', line: 60_001, unterminated: true });
    await both('ascii.jsonl', Buffer.from(Array.from({ length: 50_000 }, (_, i) => `{"i":${i}}`).join('\n') + '\n'));
    await both('crlf.jsonl', Buffer.from('{"a":1}\r\n\r\n{"b":"é"}\r\n'));
    await both('empty.jsonl', Buffer.alloc(0));
    await both('nul.jsonl', Buffer.concat([Buffer.from('{"a":1}\n'), Buffer.alloc(5000)]));
    // invalid UTF-8 is replaced as by a UTF-8 read of the whole file
    await both('bad-utf8.jsonl', Buffer.from([0x7b, 0x7d, 0x0a, 0xe2, 0x82, 0x0a, 0xff, 0x41, 0x0a, 0xc3]));
  });

  it('reads a line longer than its buffer', async () => {
    const long = `{"x":"${'a'.repeat(3 << 20)}"}`;
    const { got } = await both('long.jsonl', Buffer.from(`{"a":1}\n${long}\n{"b":2}\n${long}`));
    expect(got.map((g) => g.text.length)).toEqual([7, long.length, 7, long.length]);
  });

  it('gives the same lines whatever their length around the 64 KiB pieces a read is decoded in', async () => {
    // lines of about a piece, some just under or over it, a newline right at a piece's end, multi-byte characters
    const sizes = [10, 65_535, 65_536, 65_537, 3, 65_534, 70_000, 131_072, 1, 40_000, 40_000, 200_000, 65_535];
    const lines = sizes.map((n, i) => `{"i":${i},"s":"${(i % 3 === 0 ? 'é' : 'a').repeat(n)}"}`);
    await both('pieces.jsonl', Buffer.from(lines.join('\n') + '\n'));
    await both('pieces-ascii.jsonl', Buffer.from(sizes.map((n) => 'b'.repeat(n)).join('\n')));
  });
});
