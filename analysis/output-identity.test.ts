/**
 * The analysis output of a fixed synthetic campaign (tables, fits, report,
 * CSV export, compare) must not change when the analysis is made faster.
 * The snapshot in test/fixtures/analysis-snapshot/ was written by the code
 * before the speed work (issue 17); regenerate it only for an intended
 * change of results: MIGBENCH_WRITE_SNAPSHOT=1 npx vitest run --project unit analysis/output-identity.test.ts
 * The power file gets odd but valid (and some invalid) lines appended, so
 * fast paths and their fallbacks are both covered.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { analyzeRun } from './analyze.ts';
import { compareRuns } from './compare.ts';
import { exportCsv } from './export.ts';
import { writeReport } from './report/write.ts';
import { loadRunDir } from './rundir.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-output-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const snapDir = new URL('../test/fixtures/analysis-snapshot/', import.meta.url).pathname;

/** Lines a fast parser must treat exactly as JSON.parse + the schema check do. */
const ODD_LINES = [
  '{"t":"2026-11-20T00:00:01.250Z","measurement":"power","tags":{"host":"r1\\u002dh1","treatment":"t0001"},"fields":{"watts":1.5e2}}',
  '{"t":"2026-11-20T00:00:01.500Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001","__proto__":"x"},"fields":{"watts":-0.0}}',
  '{ "t": "2026-11-20T00:00:01.750Z", "measurement": "power", "tags": {"host": "r1-h2", "treatment": "t0001"}, "fields": {"watts": 99.5} }',
  '{"t":"2026-11-20T00:00:02.000123Z","measurement":"power","tags":{"host":"r1-h2","treatment":"t0002"},"fields":{"watts":101,"note":"=cmd|x"}}',
  '{"t":"2026-11-20T00:00:02.100Z","measurement":"power","tags":{"host":"r1-h2","host":"r9-h9","treatment":"t0002"},"fields":{"watts":"+7","ok":true,"gone":null}}',
  '{"t":"2026-11-20T00:00:02.200Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0002"},"fields":{"watts":01}}',
  '{"t":"2026-11-20T00:00:02.300Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0002"},"fields":{}}',
  '{"t":"2026-11-20T00:00:02.400Z","measurement":"power","tags":{"host":5},"fields":{"watts":3}}',
  '{"t":"not a time","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":3,"x":"a,b \\"q\\""}}',
  '{"t":"2026-11-20T00:00:02.500Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":1E400}}\r',
  'null',
  '[1,2]',
  '{"t":"2026-11-20T00:00:02.600Z","measurement":"power","tags":{"host":"r1-h1"},"fields":{"watts":12.25}}',
  '{"t":"2026-11-20T00:00:02.700Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":12.25},"extra":{"a":1}}',
  '{"t":"2026-11-20T00:00:02.800Z","measurement":"power","tags":{"host":"r1-h1","treatment":"t0003"},"fields":{"watts":12.25}',
  '',
];

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** JSON of an analysis result with Maps, Sets and non-finite numbers kept distinguishable. */
function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x instanceof Map
        ? { __map: [...x] }
        : x instanceof Set
          ? { __set: [...x] }
          : typeof x === 'number' && !Number.isFinite(x)
            ? `num:${x}`
            : x,
    1,
  );
}

describe('analysis output of a fixed synthetic campaign', () => {
  it('is identical to the snapshot taken before the speed work', async () => {
    const dir = generateSyntheticRun(join(root, 'run'), {
      seed: 1,
      reps: 5,
      vmSizesMiB: [256],
      wsetsMiB: [16, 64],
      ratesMbit: [100, 200, 400],
      planVms: 4,
      failRate: 0.02,
      powerSamples: 20_000,
    });
    appendFileSync(join(dir, 'samples', 'power.jsonl'), ODD_LINES.join('\n') + '\n' + '{"t":"2026-11-20T00:00:03');
    const run = loadRunDir(dir);
    const a = await analyzeRun(run);
    const report = await writeReport(run, undefined, { analysis: a });
    const csvDir = join(root, 'csv');
    const csvPaths = await exportCsv(run, csvDir);
    const cmp = await compareRuns(run, run);
    const problems = run.problems.map((p) => ({ ...p, file: relative(dir, p.file) }));
    const got: Record<string, string> = {
      'analysis.json': canonical({ analysis: a, problems, compare: cmp }),
      'summary.md': readFileSync(report.markdown, 'utf8'),
      'hashes.json': JSON.stringify(
        {
          'index.html': sha(readFileSync(report.html)),
          csvFiles: csvPaths.map((p) => relative(csvDir, p)),
          csv: Object.fromEntries(
            readdirSync(csvDir)
              .sort()
              .map((f) => [f, sha(readFileSync(join(csvDir, f)))]),
          ),
        },
        null,
        1,
      ),
    };
    for (const [f, raw] of Object.entries(got)) {
      const text = raw.replaceAll(root, '<root>');
      const path = join(snapDir, f);
      if (process.env.MIGBENCH_WRITE_SNAPSHOT === '1' || !existsSync(path)) writeFileSync(path, text);
      expect(text, f).toBe(readFileSync(path, 'utf8'));
    }
  });
});
