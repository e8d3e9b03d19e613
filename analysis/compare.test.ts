import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { compareRuns, runCompare } from './compare.ts';
import { loadRunDir } from './rundir.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-analysis-compare-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const gen = (name: string, o: Parameters<typeof generateSyntheticRun>[1]) => generateSyntheticRun(join(root, name), { reps: 8, ...o });

describe('compare', () => {
  const baseline = gen('base', { seed: 1 });
  const rerun = gen('rerun', { seed: 2, shuffleIds: true });
  const slower = gen('slow', { seed: 3, slowdown: 1.3, shuffleIds: true });

  it('does not flag a rerun of the same scenario (independent samples, same distribution)', () => {
    const lines: string[] = [];
    const code = runCompare(baseline, rerun, { print: (l) => lines.push(l), junit: join(root, 'rerun.xml') });
    expect(code).toBe(0);
    const r = compareRuns(loadRunDir(baseline), loadRunDir(rerun));
    expect(r.rows.length).toBe(6 * 6); // 6 treatments x 6 metrics, matched despite shuffled ids
    expect(r.regressions).toBe(0);
    expect(readFileSync(join(root, 'rerun.xml'), 'utf8')).not.toContain('<failure');
  });

  it('flags an injected 30 % slowdown, exit 1, JUnit failures', () => {
    const junit = join(root, 'slow.xml');
    const code = runCompare(baseline, slower, { print: () => {}, junit });
    expect(code).toBe(1);
    const r = compareRuns(loadRunDir(baseline), loadRunDir(slower));
    const totals = r.rows.filter((x) => x.metric === 'total_ms');
    expect(totals.every((x) => x.verdict === 'regression')).toBe(true);
    for (const x of totals) expect(x.relChange).toBeGreaterThan(0.2);
    const xml = readFileSync(junit, 'utf8');
    expect((xml.match(/<testcase /g) ?? []).length).toBe(r.rows.length);
    expect((xml.match(/<failure /g) ?? []).length).toBe(r.regressions);
  });

  it('takes the threshold from the baseline spec compare section', () => {
    const lenient = gen('lenient', { seed: 1, compare: { threshold: 0.5 } });
    expect(compareRuns(loadRunDir(lenient), loadRunDir(slower)).regressions).toBe(0);
    expect(compareRuns(loadRunDir(lenient), loadRunDir(slower), { threshold: 0.1 }).regressions).toBeGreaterThan(0);
  });

  it('exits 2 on unusable input: missing dir, unmatched treatments, garbage manifest', () => {
    const errs: string[] = [];
    const quiet = { print: () => {}, printError: (l: string) => errs.push(l) };
    expect(runCompare(join(root, 'nope'), rerun, quiet)).toBe(2);
    expect(errs[0]).toMatch(/does not exist/);
    const other = gen('other', { seed: 4, ratesMbit: [50] });
    expect(runCompare(baseline, other, quiet)).toBe(2);
    expect(errs[1]).toMatch(/matches/);
    mkdirSync(join(root, 'bad'));
    writeFileSync(join(root, 'bad', 'manifest.json'), '{not json');
    expect(runCompare(baseline, join(root, 'bad'), quiet)).toBe(2);
    expect(errs[2]).toMatch(/not valid JSON/);
  });
});
