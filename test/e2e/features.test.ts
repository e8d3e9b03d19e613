import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runExperiment } from '../../harness/experiment/runner.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import { down } from '../../harness/testbed/local.ts';
import { ROOT } from '../support/cli.ts';
import { qemuPidsMentioning } from '../support/procs.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * Block migration and the migration features shown engaging, each on one migration of a real
 * guest over the same testbed (bkfeat: two hosts, 200 Mbit/s migration links, kept up between
 * the runs): the evidence is QEMU's own (query-migrate, query-block-jobs, events) as the record
 * carries it, and the guest is healthy on the destination afterwards.
 */
const out = fileScratchDir('mb-e2e-features-');
const log = (l: string) => process.stderr.write(`${l}\n`);
const spec = (f: string) => `${ROOT}test/e2e/specs/features-${f}.yaml`;

async function migrateOnce(f: string): Promise<{ rec: MigrationRecord; dir: string }> {
  const res = await runExperiment({ specFile: spec(f), outDir: out, log });
  const lines = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
  expect(lines).toHaveLength(1);
  const rec = lines[0];
  log(
    `${f}: ${JSON.stringify({ total_ms: rec.total_ms, downtime_event_ms: rec.downtime_event_ms, features: rec.features, block: rec.block })}`,
  );
  expect(rec.status, rec.reason ?? '').toBe('completed');
  expect(rec.healthy, JSON.stringify(rec.health)).toBe(true);
  expect(rec.health.workload_running).toBe(true);
  expect(rec.flags?.filter((x) => x.code === 'not_engaged')).toEqual([]);
  expect(qemuPidsMentioning(res.dir)).toEqual([]);
  return { rec, dir: res.dir };
}

afterAll(async () => {
  await down('bkfeat');
}, 120_000);

describe('block migration and migration features', () => {
  it('block migration: the disk is mirrored over NBD, then RAM; the content written before reads back on the destination', async () => {
    const { rec, dir } = await migrateOnce('block');
    const b = rec.block!;
    expect(b.disk_bytes).toBe(64 * 2 ** 20);
    expect(b.mirror_bytes).toBe(b.disk_bytes);
    // what crossed: the 8 MiB pattern (and qcow2 metadata), not the 56 MiB of zeros the mirror skipped
    expect(b.dst_allocated_bytes!).toBeGreaterThanOrEqual(8 * 2 ** 20);
    expect(b.dst_allocated_bytes!).toBeLessThan(16 * 2 ** 20);
    expect(b.mirror_ms!).toBeGreaterThan(0);
    expect(b.switchover_ms!).toBeGreaterThanOrEqual(0);
    // the RAM migration lies inside the block migration
    expect(b.total_ms!).toBeGreaterThan(b.mirror_ms! + rec.total_ms!);
    expect(Date.parse(b.t_mirror_ready!)).toBeLessThanOrEqual(Date.parse(rec.t_cmd!));
    expect(Date.parse(b.t_mirror_done!)).toBeGreaterThanOrEqual(Date.parse(rec.t_done!));
    expect(b.content).toMatchObject({ bytes: 8 * 2 ** 20, verified: true });
    expect(b.content!.sha256_before).toMatch(/^[0-9a-f]{64}$/);
    // the source's image is gone with the guest; the destination's holds the copy
    const treatmentFiles = readdirSync(dir, { recursive: true }).map(String);
    expect(treatmentFiles.filter((p) => p.endsWith('vm1.r1-h1.disk.qcow2'))).toEqual([]);
    expect(treatmentFiles.filter((p) => p.endsWith('vm1.r1-h2.disk.qcow2'))).toHaveLength(1);
    const jobs = readJsonl<{ fields: { offset: number; len: number } }>(join(dir, 'samples', 'block_job.jsonl'));
    expect(jobs.length).toBeGreaterThan(0);
  }, 240_000);

  it('a shared disk (one image both hosts open): live migration moves RAM only', async () => {
    const { rec, dir } = await migrateOnce('shared');
    expect(rec.block ?? null).toBeNull();
    const images = readdirSync(dir, { recursive: true })
      .map(String)
      .filter((p) => /\.disk\.(raw|qcow2)$/.test(p));
    expect(images.map((p) => p.split('/').at(-1))).toEqual(['vm1.disk.raw']);
  }, 240_000);

  it('post-copy: switched after 1 s, the destination fetched pages on demand', async () => {
    const { rec } = await migrateOnce('postcopy');
    const p = rec.features!.postcopy!;
    expect(p.engaged).toBe(true);
    expect(p.switch_after_ms!).toBeGreaterThanOrEqual(1000);
    expect(Date.parse(p.t_postcopy!)).toBeGreaterThanOrEqual(Date.parse(p.t_switch!) - 5);
    expect(p.blackout_ms!).toBeGreaterThan(0);
    expect(p.requests!).toBeGreaterThan(0);
    expect(p.postcopy_bytes!).toBeGreaterThan(0);
  }, 240_000);

  it('multifd: the RAM went over 4 channels', async () => {
    const { rec } = await migrateOnce('multifd');
    const m = rec.features!.multifd!;
    expect(m).toMatchObject({ engaged: true, channels: 4 });
    expect(m.multifd_bytes!).toBeGreaterThan(8 * 2 ** 20);
  }, 240_000);

  it('xbzrle: re-dirtied pages were sent encoded from the cache', async () => {
    const { rec } = await migrateOnce('xbzrle');
    const x = rec.features!.xbzrle!;
    expect(x.engaged).toBe(true);
    expect(x.cache_size).toBe(32 * 2 ** 20);
    expect(x.pages!).toBeGreaterThan(0);
    // an encoded page costs far less than the page
    expect(x.bytes!).toBeLessThan(x.pages! * 4096);
  }, 240_000);

  it('auto-converge: QEMU throttled the vCPU, rising from the initial 50 %', async () => {
    const { rec } = await migrateOnce('autoconverge');
    const a = rec.features!.auto_converge!;
    expect(a.engaged).toBe(true);
    expect(a.throttle[0][1]).toBe(50);
    expect(a.max_throttle_pct!).toBeGreaterThanOrEqual(50);
    for (let i = 1; i < a.throttle.length; i++) expect(a.throttle[i][0]).toBeGreaterThan(a.throttle[i - 1][0]);
    expect(existsSync(out)).toBe(true);
  }, 240_000);
});
