import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runExperiment } from '../../harness/experiment/runner.ts';
import { firstReplySince } from '../../harness/migration/derive.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { longestOutage, type ProbeRecord } from '../../harness/native/programs.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import type { Sample } from '../../harness/store/sample.ts';
import { down } from '../../harness/testbed/local.ts';
import { ROOT } from '../support/cli.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * Millisecond downtime resolution: a 1 ms probe during real migrations over a
 * shaped 100 Mbit/s link. The probe's outage and QEMU's STOP->RESUME events
 * are independent measurements of the same pause; they must agree within the
 * flag's tolerance (5 ms + one probe interval: the observed outage also holds
 * the network's switch after RESUME, -0.26..+3.97 ms over 28 migrations here,
 * 2026-11-30..12-01) on every migration, while the
 * probe stays cheap (its CPU is recorded), loses nothing on its own, and
 * writes thinned samples from which the outage still re-derives exactly.
 */
const out = fileScratchDir('mb-e2e-probe1ms-');
const log = (l: string) => process.stderr.write(`${l}\n`);

afterAll(async () => {
  await down('h2p');
});

describe('1 ms downtime probe', () => {
  it('observed and event downtime agree within 5 ms + one probe interval on every migration', async () => {
    const res = await runExperiment({ specFile: `${ROOT}test/e2e/specs/probe-1ms.yaml`, outDir: out, log });
    const recs = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(recs).toHaveLength(4);
    const samples = (m: string) => readJsonl<Sample>(join(res.dir, 'samples', `${m}.jsonl`));
    const probe = samples('probe').map((s): ProbeRecord => ({
      seq: Number(s.fields.seq),
      sentUs: Number(s.fields.sent_us),
      recvUs: s.fields.recv_us === null ? null : Number(s.fields.recv_us),
    }));
    for (const r of recs) {
      expect(r.status, r.reason ?? '').toBe('completed');
      expect(r.probe_interval_ms).toBe(1);
      const diff = r.downtime_observed_ms! - r.downtime_event_ms!;
      log(
        `AGREEMENT ${r.id}: event ${r.downtime_event_ms!.toFixed(3)} ms, observed ${r.downtime_observed_ms!.toFixed(3)} ` +
          `± ${r.downtime_observed_uncertainty_ms} ms, reported ${r.downtime_reported_ms} ms, observed - event ${diff.toFixed(3)} ms, ` +
          `postop ${r.postop_ms?.toFixed(3)} ms, probe cpu ${r.probe_cpu_pct?.toFixed(2)} %, outside ${JSON.stringify(r.probe_outside)}`,
      );
      expect(Math.abs(diff)).toBeLessThanOrEqual(5 + r.probe_interval_ms!);
      // the probe sent close to schedule around the outage: at least one interval; a send slipping on this noisy
      // 2-core machine widens it (< 1.5 ms in earlier CI runs, 2.054 ms in the 2026-12-01 CI run): at most the agreement bound
      expect(r.downtime_observed_uncertainty_ms!).toBeGreaterThanOrEqual(1);
      expect(r.downtime_observed_uncertainty_ms!).toBeLessThanOrEqual(5 + r.probe_interval_ms!);
      // the probe's own loss and CPU are in the record; no flag about either
      expect(r.probe_outside!.sent).toBeGreaterThan(1000);
      expect(r.probe_outside!.lost / r.probe_outside!.sent).toBeLessThanOrEqual(0.001);
      expect(r.probe_cpu_pct!).toBeGreaterThan(0);
      expect((r.flags ?? []).map((f) => f.code)).not.toContain('downtime_disagrees');
      expect((r.flags ?? []).map((f) => f.code)).not.toContain('probe_loss_outside');
      // the thinned samples still give the record's outage exactly
      const tCmd = Date.parse(r.t_cmd!);
      const first = firstReplySince(probe, Date.parse(r.t_resume!))!;
      expect(longestOutage(probe, 1, { fromUs: tCmd * 1000, toUs: first.sentUs })!.durationMs).toBeCloseTo(r.downtime_observed_ms!, 6);
    }
    // thinned: about one sample per 10 ms plus the outages' surroundings; what is left out is counted in probe_stats
    const [summary] = samples('probe_summary');
    const sent = Number(summary.fields.sent);
    expect(sent).toBeGreaterThan(20_000);
    expect(probe.length).toBeLessThan(sent / 5);
    const stats = samples('probe_stats');
    expect(stats.reduce((a, s) => a + Number(s.fields.sent), 0)).toBe(sent);
    expect(Number(summary.fields.skipped_slots)).toBeLessThan(sent * 0.01);
    log(
      `PROBE ${sent} sent, ${summary.fields.lost} lost (${summary.fields.lost_outside_migrations} outside migrations), ` +
        `${summary.fields.skipped_slots} slots skipped, cpu ${Number(summary.fields.cpu_pct).toFixed(2)} % of a core over ` +
        `${(Number(summary.fields.duration_ms) / 1000).toFixed(1)} s; ${probe.length} probe samples written`,
    );
    expect(Number(summary.fields.cpu_pct)).toBeGreaterThan(0);
  });
});
