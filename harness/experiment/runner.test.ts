import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { markPartial } from './runner.ts';
import { NotRecorded } from './treatment.ts';
import { UserError } from '../util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'mb-runner-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('resume bookkeeping', () => {
  it('marks the records of an interrupted attempt partial, keeps damaged lines for analysis to report, drops a torn tail', () => {
    const p = join(root, 'migrations.jsonl');
    const rec = (rep: number, attempt: number) =>
      JSON.stringify({ id: `t1-r${rep}-a${attempt}`, treatment: 't1', rep, attempt, status: 'completed' });
    writeFileSync(p, [rec(0, 1), 'garbage', rec(1, 1), rec(1, 2)].join('\n') + '\n{"id":"to');
    markPartial(root, [{ treatment: 't1', rep: 1, status: 'pending', attempts: 2 }]);
    const lines = readFileSync(p, 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1).map((l) => (l.startsWith('{') ? `${JSON.parse(l).id}:${JSON.parse(l).partial ?? false}` : l))).toEqual([
      't1-r0-a1:false',
      'garbage',
      't1-r1-a1:false',
      't1-r1-a2:true',
    ]);
  });

  it('a record that could not be written is one clear UserError naming the migration, the reason and the way out', () => {
    const e = new NotRecorded('migration t1-r0-vm1', 'runs/x/migrations.jsonl: record not written (ENOSPC)', 'runs/x');
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toBe(
      "migration t1-r0-vm1 measured but NOT recorded: runs/x/migrations.jsonl: record not written (ENOSPC); free space and run 'migbench resume runs/x'",
    );
  });
});
