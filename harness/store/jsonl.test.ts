import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JsonlWriter, readJsonl, type LineProblem } from './jsonl.ts';

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
