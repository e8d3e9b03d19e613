import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runExperiment } from '../../harness/experiment/runner.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import type { MigrationRecord } from '../../harness/store/schema/index.ts';
import { down } from '../../harness/testbed/local.ts';
import { netnsList, ROOT } from '../support/cli.ts';
import { qemuPidsMentioning } from '../support/procs.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * Restored guests measure the same as cold-booted ones: the same migration
 * (128 MiB guest writing a 16 MiB working set, 200 Mbit/s link) four times
 * each, restored and cold-booted treatments alternating in one campaign.
 * Means may differ by no more than the spread seen within each group
 * (3 x the larger standard deviation) plus a floor for near-constant metrics.
 */
const out = fileScratchDir('mb-e2e-restore-');
const log = (l: string) => process.stderr.write(`${l}\n`);

afterAll(async () => {
  await down('rse2e');
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
};

describe('restored vs cold-booted guests', () => {
  it('give the same migration results within noise, and a restored guest is ready much sooner', async () => {
    const res = await runExperiment({ specFile: `${ROOT}test/e2e/specs/restore.yaml`, outDir: out, log });
    const recs = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(recs).toHaveLength(8);
    for (const r of recs) expect(r.status, r.reason ?? '').toBe('completed');
    const restored = recs.filter((r) => r.guest_start?.mode === 'restored');
    const cold = recs.filter((r) => r.guest_start?.mode === 'cold');
    // every 'auto' treatment restored (none fell back to a cold boot), from one saved guest
    expect(restored).toHaveLength(4);
    expect(cold).toHaveLength(4);
    for (const r of cold) expect(r.guest_start!.reason).toMatch(/vms\[\]\.boot is cold/);
    expect(new Set(restored.map((r) => r.guest_start!.from)).size).toBe(1);
    expect(restored[0].guest_start!.from).toMatch(/^[0-9a-f]{16}$/);

    const summary: Record<string, unknown> = {};
    const metrics = { total_ms: 0.05, transferred_bytes: 0.05, downtime_event_ms: 0.1 } as const;
    for (const [m, floor] of Object.entries(metrics) as [keyof typeof metrics, number][]) {
      const a = restored.map((r) => r[m] as number);
      const b = cold.map((r) => r[m] as number);
      const diff = Math.abs(mean(a) - mean(b));
      const bound = 3 * Math.max(sd(a), sd(b)) + floor * mean(b);
      summary[m] = { restored: a, cold: b, diff: Math.round(diff), bound: Math.round(bound) };
      expect(diff, `${m}: restored ${a.join(', ')} vs cold ${b.join(', ')}`).toBeLessThanOrEqual(bound);
    }

    // ready time: restores that found the saved guest vs cold boots, as measured here
    const restoreReady = restored.filter((r) => r.guest_start!.made_ms === null).map((r) => r.guest_start!.ready_ms!);
    const coldReady = cold.map((r) => r.guest_start!.ready_ms!);
    expect(restoreReady.length).toBeGreaterThanOrEqual(3);
    summary.ready_ms = { restored: restoreReady, cold: coldReady };
    log(`[restore e2e] ${JSON.stringify(summary)}`);
    expect(Math.max(...restoreReady)).toBeLessThan(0.5 * Math.min(...coldReady));

    expect(qemuPidsMentioning(res.dir)).toEqual([]);
    expect((await netnsList()).filter((n) => n.startsWith('mb-rse2e-'))).toEqual([]);
  });
});
