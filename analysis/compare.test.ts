import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { compareExitCode, compareRuns, junitXml, runCompare } from './compare.ts';
import { fisherGreater } from './stats/fisher.ts';
import { minOneSidedP } from './stats/mannwhitney.ts';
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
    expect((xml.match(/<testcase /g) ?? []).length).toBe(r.rows.length + r.failureRows.length);
    expect((xml.match(/<failure /g) ?? []).length).toBe(r.regressions + r.insufficient);
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

/** A tiny run directory written record by record, so counts and values are exactly what a test needs. */
type Row = { values?: Partial<Record<string, number | null>>; status?: 'completed' | 'failed' | 'cancelled'; reason?: string };
function writeRun(name: string, rows: Row[]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const manifest = {
    name: 'tiny',
    spec: {},
    factors: { 'vms[0].memory': ['64MiB'] },
    treatments: [{ id: 't1', levels: { 'vms[0].memory': '64MiB' } }],
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const lines = rows.map((r, i) => {
    const status = r.status ?? 'completed';
    const v = { total_ms: 1000 + i, downtime_event_ms: 300 + i, transferred_bytes: 1e8 + i, energy_j: 50 + i, ...r.values };
    const rec = {
      id: `m${i}`,
      treatment: 't1',
      rep: i,
      vm: 'vm1',
      src: 'h1',
      dst: 'h2',
      status,
      ...(r.reason ? { reason: r.reason } : {}),
    };
    return JSON.stringify(status === 'completed' ? { ...rec, ...v } : rec);
  });
  writeFileSync(join(dir, 'migrations.jsonl'), lines.join('\n') + '\n');
  return dir;
}
const metrics = ['total_ms', 'downtime_event_ms', 'transferred_bytes', 'energy_j'];
const scaled = (k: number) => ({
  total_ms: (1000 + k) * 100,
  downtime_event_ms: (300 + k) * 100,
  transferred_bytes: (1e8 + k) * 100,
  energy_j: (50 + k) * 100,
});

describe('compare with few repetitions and failures (issue 12 item 3)', () => {
  const quiet = { print: () => {}, printError: () => {}, metrics };

  it('knows the power floor of Mann-Whitney and Fisher', () => {
    expect(minOneSidedP(3, 3)).toBeCloseTo(1 / 20, 12);
    expect(minOneSidedP(4, 4)).toBeCloseTo(1 / 70, 12);
    expect(minOneSidedP(1, 3)).toBeCloseTo(1 / 4, 12);
    expect(minOneSidedP(60, 60)).toBeLessThan(1e-10);
    // 0/10 vs 5/10 failures: P(X >= 5), X ~ Hypergeom(20, 5, 10) = C(15,5)/C(20,10)
    const f = fisherGreater(0, 10, 5, 10);
    expect(f.p).toBeCloseTo(3003 / 184756, 10);
    expect(f.minP).toBeCloseTo(3003 / 184756, 10);
    expect(fisherGreater(2, 10, 2, 10).p).toBeGreaterThan(0.5);
  });

  it('every metric x100 with 3 vs 3 repetitions: not a pass but "insufficient repetitions", exit 1, JUnit failures', () => {
    const base = writeRun('x100-base', [{}, {}, {}]);
    const cand = writeRun(
      'x100-cand',
      [0, 1, 2].map((k) => ({ values: scaled(k) })),
    );
    const r = compareRuns(loadRunDir(base), loadRunDir(cand), { metrics });
    expect(r.rows).toHaveLength(metrics.length);
    for (const row of r.rows) {
      expect(row.verdict).toBe('insufficient');
      expect(row.minP).toBeCloseTo(0.05, 12);
      expect(row.detail).toMatch(/insufficient repetitions to test, effect \+9\d{3}\.\d %/);
      expect(row.detail).toMatch(/run >= 4 per treatment/);
    }
    expect(r.insufficient).toBe(metrics.length);
    expect(compareExitCode(r)).toBe(1);
    const junit = join(root, 'x100.xml');
    expect(runCompare(base, cand, { ...quiet, junit })).toBe(1);
    const xml = readFileSync(junit, 'utf8');
    expect((xml.match(/type="insufficient-repetitions"/g) ?? []).length).toBe(metrics.length);
    expect(xml).toMatch(/failures="4"/);
  });

  it('the same x100 with 4 vs 4 repetitions is a tested regression', () => {
    const base = writeRun('x100-base4', [{}, {}, {}, {}]);
    const cand = writeRun(
      'x100-cand4',
      [0, 1, 2, 3].map((k) => ({ values: scaled(k) })),
    );
    const r = compareRuns(loadRunDir(base), loadRunDir(cand), { metrics });
    expect(r.rows.every((x) => x.verdict === 'regression')).toBe(true);
    expect(r.insufficient).toBe(0);
  });

  it('3 vs 3 with no change passes and says the test had no power', () => {
    const base = writeRun('same-base', [{}, {}, {}]);
    const cand = writeRun('same-cand', [{}, {}, {}]);
    const r = compareRuns(loadRunDir(base), loadRunDir(cand), { metrics });
    expect(compareExitCode(r)).toBe(0);
    expect(r.rows.every((x) => x.verdict === 'ok' && /cannot reach alpha/.test(x.detail))).toBe(true);
  });

  it('two thirds of the candidate failed: a failure-rate regression with counts and reasons, exit 1', () => {
    const base = writeRun('fail-base', [{}, {}, {}]);
    const cand = writeRun('fail-cand', [
      {},
      { status: 'failed', reason: 'did not converge before max_time' },
      { status: 'cancelled', reason: 'interrupted' },
    ]);
    const r = compareRuns(loadRunDir(base), loadRunDir(cand), { metrics });
    expect(r.failureRows).toHaveLength(1);
    const f = r.failureRows[0];
    expect(f.verdict).toBe('regression');
    expect(f.candidate).toMatchObject({ n: 3, failed: 1, cancelled: 1 });
    expect(f.detail).toMatch(/did not converge before max_time \(1\)/);
    expect(f.detail).toMatch(/failures where the baseline had none/);
    expect(compareExitCode(r)).toBe(1);
    const junit = join(root, 'fail.xml');
    expect(runCompare(base, cand, { ...quiet, junit })).toBe(1);
    expect(readFileSync(junit, 'utf8')).toMatch(/name="failed_or_cancelled">\s*<failure [^>]*type="regression"/);
  });

  it('a candidate whose migrations all failed is a regression, not a crash', () => {
    const base = writeRun('allfail-base', [{}, {}, {}]);
    const cand = writeRun(
      'allfail-cand',
      [0, 1, 2].map(() => ({ status: 'failed' as const, reason: 'guest did not answer' })),
    );
    expect(runCompare(base, cand, quiet)).toBe(1);
  });

  it('failures in both at the same rate are not a regression; a significant rise is', () => {
    const same = compareRuns(
      loadRunDir(writeRun('bothfail-base', [{}, {}, {}, {}, {}, { status: 'failed', reason: 'x' }])),
      loadRunDir(writeRun('bothfail-cand', [{}, {}, {}, {}, {}, { status: 'failed', reason: 'x' }])),
      { metrics },
    );
    expect(same.failureRows[0].verdict).toBe('ok');
    expect(compareExitCode(same)).toBe(0);
    const ok = Array.from({ length: 12 }, () => ({}));
    const bad = Array.from({ length: 12 }, (_, i) => (i < 9 ? { status: 'failed' as const, reason: 'x' } : {}));
    const rise = compareRuns(
      loadRunDir(writeRun('rise-base', [...ok.slice(1), { status: 'failed', reason: 'x' }])),
      loadRunDir(writeRun('rise-cand', bad)),
      { metrics },
    );
    expect(rise.failureRows[0].verdict).toBe('regression');
    expect(rise.failureRows[0].p).toBeLessThan(0.05);
  });

  it('nothing could be compared (no metric has values on both sides): exit 2 with the reason, JUnit error', () => {
    const base = writeRun('noval-base', [{}, {}, {}]);
    const cand = writeRun('noval-cand', [{ values: { energy_j: null } }, { values: { energy_j: null } }, { values: { energy_j: null } }]);
    const errs: string[] = [];
    const junit = join(root, 'noval.xml');
    expect(runCompare(base, cand, { print: () => {}, printError: (l) => errs.push(l), metrics: ['energy_j'], junit })).toBe(2);
    expect(errs.join('\n')).toMatch(/nothing could be compared.*no energy_j value in the candidate/);
    expect(readFileSync(junit, 'utf8')).toMatch(/<error [^>]*type="nothing-compared"/);
    const r = compareRuns(loadRunDir(base), loadRunDir(cand), { metrics: ['energy_j'] });
    expect(junitXml(r)).toMatch(/errors="1"/);
  });
});
