import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { UserError } from '../harness/util/errors.ts';
import { analyzeRun } from './analyze.ts';
import { exportCsv, migrationsCsv } from './export.ts';
import { allTables } from './report/tables.ts';
import { tableMarkdown } from './report/markdown.ts';
import { loadRunDir, problemText, streamSamples, truncatedLines } from './rundir.ts';

const root = mkdtempSync(join(tmpdir(), 'mb-rundir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const V1 = join(import.meta.dirname, '..', 'test', 'fixtures', 'rundir-v1');

function synth(name: string): string {
  return generateSyntheticRun(join(root, name), { seed: 3, reps: 2, wsetsMiB: [16], ratesMbit: [100, 400] });
}
const texts = (dir: string) => loadRunDir(dir).problems.map((p) => problemText({ dir }, p));

describe('damaged run directories (issue 10): analysis completes and locates every problem', () => {
  it('a truncated last line, a line missing a required field and a garbage line: three problems with file and line', async () => {
    const dir = synth('three');
    const p = join(dir, 'migrations.jsonl');
    const n = readFileSync(p, 'utf8').trimEnd().split('\n').length; // 4 good records
    const good = JSON.parse(readFileSync(p, 'utf8').split('\n')[0]);
    const { treatment: _dropped, ...noTreatment } = { ...good, id: 'no-treatment' };
    appendFileSync(p, JSON.stringify(noTreatment) + '\n' + 'this is not json\n' + '{"id":"torn","treatment":"t0');
    const run = loadRunDir(dir);
    expect(run.migrations.length).toBe(n);
    const located = run.problems.map((x) => problemText(run, x));
    expect(located).toEqual([
      expect.stringMatching(new RegExp(`^migrations\\.jsonl:${n + 1}: treatment: .*expected string`)),
      expect.stringMatching(new RegExp(`^migrations\\.jsonl:${n + 2}: not valid JSON`)),
      expect.stringMatching(new RegExp(`^migrations\\.jsonl:${n + 3}: unterminated last line`)),
    ]);
    expect(run.problems.map((x) => x.kind)).toEqual(['invalid', 'garbage', 'truncated']);
    expect(truncatedLines(run)).toBe(1);
    // analysis runs to the end and the output shows them
    const a = await analyzeRun(run);
    expect(a.counts.total).toBe(n);
    const md = allTables(run, a).map(tableMarkdown).join('\n');
    expect(md).toContain(`migrations.jsonl:${n + 2}`);
    expect(md).toContain('1 truncated last line(s)');
  });

  it('null lines, a null treatment, missing factors, samples without fields or measurement: problems, not crashes', async () => {
    const dir = synth('nulls');
    appendFileSync(join(dir, 'migrations.jsonl'), 'null\n');
    appendFileSync(join(dir, 'plans.jsonl'), '[1,2]\n');
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.treatments.push(null);
    delete m.factors;
    m.power_source = 42;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    appendFileSync(
      join(dir, 'samples', 'power.jsonl'),
      [
        JSON.stringify({ t: '2026-11-20T00:00:00.000Z', measurement: 'power', tags: {} }),
        JSON.stringify({ t: '2026-11-20T00:00:00.000Z', measurement: 'power', tags: {}, fields: {} }),
        JSON.stringify({ t: '2026-11-20T00:00:00.000Z', tags: { x: '"power"' }, fields: { watts: 1 } }),
        '\u0000\u0000\u0000\u0000',
        JSON.stringify({ t: '2026-11-20T00:00:01.000Z', measurement: 'power', tags: { host: 'h' }, fields: { watts: 1 } }),
      ].join('\n') + '\n',
    );
    const run = loadRunDir(dir);
    const before = texts(dir);
    expect(before).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^manifest\.json: factors: missing/),
        expect.stringMatching(/^manifest\.json: treatments\[\d+\]: null instead of a treatment; skipped/),
        expect.stringMatching(/^manifest\.json: power_source: .*ignored/),
        expect.stringMatching(/^migrations\.jsonl:\d+: the line is null/),
        expect.stringMatching(/^plans\.jsonl:\d+: expected a JSON object, found an array/),
      ]),
    );
    expect(run.manifest.treatments.length).toBe(2);
    expect(run.manifest.factors).toEqual({});
    let seen = 0;
    await streamSamples(run, () => seen++);
    await streamSamples(run, () => undefined); // a second pass (export does two) does not repeat them
    const sampleProblems = run.problems.filter((p) => p.file.endsWith('power.jsonl')).map((p) => problemText(run, p));
    expect(sampleProblems).toEqual([
      expect.stringMatching(/power\.jsonl:\d+: fields: .*expected record/),
      expect.stringMatching(/power\.jsonl:\d+: fields: no fields/),
      expect.stringMatching(/power\.jsonl:\d+: measurement: .*expected string/),
      expect.stringMatching(/power\.jsonl:\d+: 4 NUL bytes/),
    ]);
    expect(seen).toBeGreaterThan(0);
    await expect(analyzeRun(run)).resolves.toBeTruthy();
  });

  it('keeps healthy: null as null and keeps unknown keys; old records without newer fields read with defaults', () => {
    const dir = synth('healthy');
    writeFileSync(
      join(dir, 'migrations.jsonl'),
      [
        { id: 'a', treatment: 't0001', rep: 0, vm: 'vm1', src: 'h1', dst: 'h2', status: 'failed', healthy: null, future_field: ['x'] },
        { id: 'b', treatment: 't0001', rep: 1, vm: 'vm1', src: 'h1', dst: 'h2', status: 'completed', total_ms: 5 },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
    const run = loadRunDir(dir);
    expect(run.problems).toEqual([]);
    const [a, b] = run.migrations;
    expect(a.healthy).toBeNull();
    expect(a.future_field).toEqual(['x']);
    expect(b.healthy).toBeNull();
    expect(b.energy_j).toBeNull();
    expect(b.partial).toBe(false);
    expect(b.health).toEqual({ answers: null, workload_running: null, problems: [] });
  });

  it('warns about negative durations', () => {
    const dir = synth('negative');
    const p = join(dir, 'migrations.jsonl');
    const lines = readFileSync(p, 'utf8').trimEnd().split('\n');
    const r = JSON.parse(lines[0]);
    lines[0] = JSON.stringify({ ...r, status: 'completed', downtime_event_ms: -12 });
    writeFileSync(p, lines.join('\n') + '\n');
    expect(texts(dir)).toEqual([expect.stringMatching(/^migrations\.jsonl: migration m1: negative duration downtime_event_ms=-12/)]);
  });

  it('a missing or unparsable manifest is one clear UserError', () => {
    const dir = synth('badmanifest');
    writeFileSync(join(dir, 'manifest.json'), '{"name": ');
    expect(() => loadRunDir(dir)).toThrow(UserError);
    expect(() => loadRunDir(dir)).toThrow(/manifest\.json is not valid JSON/);
    expect(() => loadRunDir(join(root, 'none'))).toThrow(/does not exist/);
  });
});

describe('layout versions', () => {
  it('reads a run directory written before the schemas (version 1, recorded by the pre-change harness)', async () => {
    const run = loadRunDir(V1);
    expect(run.schemaVersion).toBe(1);
    expect(run.problems).toEqual([]);
    expect(run.migrations.length).toBe(2);
    expect(run.migrations.every((m) => m.status === 'completed' && m.healthy === true)).toBe(true);
    expect(run.plans.length).toBe(2);
    expect(run.treatmentTotals.length).toBe(1);
    expect(run.state?.units.every((u) => u.status === 'done')).toBe(true);
    const a = await analyzeRun(run);
    expect(a.counts.completed).toBe(2);
    expect(a.power.samples).toBeGreaterThan(50);
    // completion from plans.jsonl (the executor's clock), not from the records' spans
    expect(a.plans.plans[0].completionS).toBeCloseTo((run.plans[0].completion_ms! + run.plans[1].completion_ms!) / 2000, 6);
    expect(a.treatments[0].energyJ).toBeCloseTo(run.treatmentTotals[0].energy_j!, 6);
    expect(a.treatments[0].peakPowerW).toBeGreaterThan(200); // two hosts of >= 110 W idle, summed
    expect(run.problems).toEqual([]); // no bad sample line either
  });

  it('refuses a run directory of a newer layout with a clear message', () => {
    const dir = join(root, 'v99');
    cpSync(V1, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, schema_version: 99 }));
    expect(() => loadRunDir(dir)).toThrow(UserError);
    expect(() => loadRunDir(dir)).toThrow(/written by a newer migbench \(schema 99\); upgrade/);
  });

  it('reads what the synthetic fixture writes (the schema types) without a problem', () => {
    const run = loadRunDir(synth('clean'));
    expect(run.schemaVersion).toBe(2);
    expect(run.problems).toEqual([]);
    expect(run.state?.units.length).toBe(4);
    expect(run.treatmentTotals.length).toBe(2);
  });
});

describe('energy coverage', () => {
  it('leaves energy figures covered below 80 % out of the fit, and says how many', async () => {
    const dir = synth('coverage');
    const p = join(dir, 'migrations.jsonl');
    const lines = readFileSync(p, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const completed = lines.filter((r) => r.status === 'completed');
    completed[0].energy_coverage = 0.5;
    writeFileSync(p, lines.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const a = await analyzeRun(loadRunDir(dir));
    expect(a.energy.lowCoverage).toBe(1);
    expect(a.energy.pooled.fits[0].n).toBe(completed.length - 1);
    expect(tableMarkdown(allTables(loadRunDir(dir), a)[2])).toContain('1 migration(s) left out');
  });
});

describe('CSV export', () => {
  it('neutralises cells that a spreadsheet would run as formulas, not negative numbers', async () => {
    const { csvCell } = await import('./export.ts');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('+1+2 cmd')).toBe("'+1+2 cmd");
    expect(csvCell('-cmd')).toBe("'-cmd");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(-12.5)).toBe('-12.5');
    expect(csvCell('-12.5')).toBe('-12.5');
    expect(csvCell('-1e-3')).toBe('-1e-3');
    expect(csvCell('dirty wset=16M')).toBe('dirty wset=16M');
    const dir = synth('csv');
    const p = join(dir, 'migrations.jsonl');
    const lines = readFileSync(p, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    lines[0].reason = '=cmd|calc';
    writeFileSync(p, lines.map((r) => JSON.stringify(r)).join('\n') + '\n');
    expect(migrationsCsv(loadRunDir(dir))).toContain(`'=cmd|calc`);
  });
  it('streams the files: the same migrations.csv as the whole-string form, and a write error rejects instead of hanging', async () => {
    const dir = synth('csv-stream');
    const run = loadRunDir(dir);
    const out = join(root, 'csv-stream-out');
    await exportCsv(run, out);
    expect(readFileSync(join(out, 'migrations.csv'), 'utf8')).toBe(migrationsCsv(run));
    const bad = join(root, 'csv-stream-bad');
    mkdirSync(join(bad, 'power.csv'), { recursive: true }); // a directory where a file must go
    await expect(exportCsv(run, bad)).rejects.toThrow(/EISDIR|illegal operation on a directory/);
  });
});
