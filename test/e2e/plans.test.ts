import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runExperiment } from '../../harness/experiment/runner.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import { down } from '../../harness/testbed/local.ts';
import { ROOT } from '../support/cli.ts';
import { testScratchDir } from '../support/scratch.ts';

interface PlanLine {
  treatment: string;
  kind: string;
  k: number | null;
  completion_ms: number;
  actions: Array<{
    id: string;
    kind: string;
    vm: string | null;
    from: string | null;
    to: string | null;
    status: string;
    start: number;
    end: number;
  }>;
}

/** Largest number of actions running at one instant. */
function maxConcurrency(actions: Array<{ start: number; end: number }>): number {
  let best = 0;
  for (const a of actions) best = Math.max(best, actions.filter((b) => b.start <= a.start && a.start < b.end).length);
  return best;
}

afterAll(async () => {
  await down('mbpln');
});

describe('migration plans on a shaped interlink', () => {
  it('sequential, parallel and capped-2 plans keep their concurrency rules; parallel migrations take longer', async () => {
    const res = await runExperiment({
      specFile: `${ROOT}test/e2e/specs/plans.yaml`,
      outDir: testScratchDir('mb-e2e-plans-'),
      log: (l) => process.stderr.write(`${l}\n`),
    });
    const plans = readJsonl<PlanLine>(join(res.dir, 'plans.jsonl'));
    const migs = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(migs).toHaveLength(12);
    expect(migs.every((m) => m.status === 'completed')).toBe(true);
    const byKind = (k: string) => plans.find((p) => p.kind === k)!;
    for (const p of plans) {
      expect(p.actions).toHaveLength(4);
      expect(p.actions.every((a) => a.status === 'ok' && a.end > a.start)).toBe(true);
      // 2 sources x 2 destinations, crossing the interlink
      expect(new Set(p.actions.map((a) => a.from))).toEqual(new Set(['r1-h1', 'r1-h2']));
      expect(new Set(p.actions.map((a) => a.to))).toEqual(new Set(['r2-h1', 'r2-h2']));
      const first = Math.min(...p.actions.map((a) => a.start));
      const last = Math.max(...p.actions.map((a) => a.end));
      expect(p.completion_ms).toBe(last - first);
    }
    expect(maxConcurrency(byKind('sequential').actions)).toBe(1);
    expect(maxConcurrency(byKind('parallel').actions)).toBe(4);
    expect(maxConcurrency(byKind('capped').actions)).toBe(2);
    // sequential: each starts no earlier than the previous ended
    const seq = [...byKind('sequential').actions].sort((a, b) => a.start - b.start);
    for (let i = 1; i < seq.length; i++) expect(seq[i].start).toBeGreaterThanOrEqual(seq[i - 1].end);

    const meanDuration = (kind: string) => {
      const t = byKind(kind).treatment;
      const ms = migs.filter((m) => m.treatment === t).map((m) => m.total_ms!);
      return ms.reduce((a, b) => a + b, 0) / ms.length;
    };
    // the seeds' main finding: sharing the interlink makes each migration longer
    expect(meanDuration('parallel')).toBeGreaterThan(meanDuration('sequential') * 1.5);
    expect(meanDuration('capped')).toBeGreaterThan(meanDuration('sequential'));
    expect(meanDuration('parallel')).toBeGreaterThan(meanDuration('capped'));
  });
});
