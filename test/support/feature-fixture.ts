/**
 * Test support, not product code: a migration of a run directory as a fixture for the feature and
 * block-migration derivations (harness/migration/features.ts), next to the record's `features` and
 * `block` as the harness derived them at the time. Builds on extractFixture and adds what it does not
 * rebuild: the feature fields of migration_progress (multifd-bytes, post-copy counters, xbzrle-cache,
 * cpu-throttle-percentage), the requested features (manifest spec), the mirror (block_job samples,
 * mirror_* control samples) and the disk check (from the record: it comes from the guest console).
 *
 *   npx tsx test/support/feature-fixture.ts <runDir> <migrationId> <out.json> [probe stride]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseSize } from '../../harness/spec/units.ts';
import type { Sample } from '../../harness/store/sample.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import type { BlockJobInfo, BlockMigration, Features } from '../../harness/migration/features.ts';
import { extractFixture, formatFixture, type MigrationFixture } from './migration-fixture.ts';

export interface FeatureFixture extends MigrationFixture {
  /** The record's features and block as the harness wrote them. */
  recordedFeatures: { features: Features | null; block: BlockMigration | null };
}

const lines = <T>(file: string): T[] => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as T);
  } catch {
    return [];
  }
};
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export function extractFeatureFixture(runDir: string, id: string, probeStride = 50): FeatureFixture {
  const f = extractFixture(runDir, id, probeStride);
  const rec = lines<MigrationRecord>(join(runDir, 'migrations.jsonl')).find((r) => r.id === id)!;
  const samples = (m: string) => lines<Sample>(join(runDir, 'samples', `${m}.jsonl`)).filter((s) => s.tags.migration === id);
  const progress = samples('migration_progress');
  const o = f.observation;
  // extractFixture keeps one query per progress sample, in order
  progress.forEach((s, i) => {
    const a = o.queries[i].answer;
    const x = s.fields;
    if (a.ram) {
      for (const [k, field] of [
        ['multifd-bytes', 'multifd_bytes'],
        ['postcopy-requests', 'postcopy_requests'],
        ['postcopy-bytes', 'postcopy_bytes'],
      ] as const) {
        if (num(x[field]) !== undefined) a.ram[k] = num(x[field])!;
      }
    }
    if (num(x.xbzrle_pages) !== undefined) {
      a['xbzrle-cache'] = {
        'cache-size': num(x.xbzrle_cache_size)!,
        bytes: num(x.xbzrle_bytes)!,
        pages: num(x.xbzrle_pages)!,
        'cache-miss': num(x.xbzrle_cache_miss)!,
        'cache-miss-rate': num(x.xbzrle_cache_miss_rate)!,
        'encoding-rate': num(x.xbzrle_encoding_rate)!,
        overflow: num(x.xbzrle_overflow)!,
      };
    }
    if (num(x.cpu_throttle_pct) !== undefined) a['cpu-throttle-percentage'] = num(x.cpu_throttle_pct);
  });
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as {
    spec: {
      migration: {
        mode: 'live' | 'postcopy' | 'block';
        capabilities?: { multifd?: boolean; xbzrle?: boolean; auto_converge?: boolean };
        multifd_channels?: number;
        xbzrle_cache?: string;
      };
    };
  };
  const m = manifest.spec.migration;
  o.config.features = {
    postcopy: m.mode === 'postcopy',
    multifd: m.capabilities?.multifd ? { channels: m.multifd_channels ?? 2 } : null,
    xbzrle: m.capabilities?.xbzrle ? { cacheBytes: m.xbzrle_cache ? parseSize(m.xbzrle_cache)! : 64 * 2 ** 20 } : null,
    autoConverge: m.capabilities?.auto_converge === true,
  };
  const control = samples('migration_control');
  const at = (action: string) => {
    const c = control.find((s) => s.fields.action === action);
    return c ? Date.parse(c.t) : null;
  };
  if (at('mirror_start') !== null) {
    o.block = {
      mirrorStartMs: at('mirror_start'),
      jobs: samples('block_job').map((s) => {
        const x = s.fields;
        const job: BlockJobInfo | null =
          num(x.len) === undefined
            ? null
            : { device: 'mb-mirror', len: num(x.len)!, offset: num(x.offset)!, ready: x.ready === true, status: String(x.status) };
        return { tMs: Date.parse(s.t), job };
      }),
      cancelMs: at('mirror_cancel'),
      check: rec.block?.content ?? null,
    };
    const alloc = control.find((s) => s.fields.action === 'disk_allocated');
    if (alloc) o.block.dstAllocatedBytes = alloc.fields.detail === 'null' ? null : Number(alloc.fields.detail);
  }
  o.note =
    `${o.note ?? ''} Features: requested from the manifest's spec; feature fields of migration_progress recorded; ` +
    'mirror from block_job and migration_control samples; the disk check from the record (it comes from the guest console).';
  return { ...f, recordedFeatures: { features: rec.features ?? null, block: rec.block ?? null } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [runDir, id, out, stride] = process.argv.slice(2);
  if (!runDir || !id || !out) {
    process.stderr.write('usage: npx tsx test/support/feature-fixture.ts <runDir> <migrationId> <out.json> [probe stride]\n');
    process.exit(2);
  }
  const f = extractFeatureFixture(runDir, id, stride ? Number(stride) : undefined);
  const text = formatFixture(f).replace(/\n}\n$/, `,\n "recordedFeatures": ${JSON.stringify(f.recordedFeatures)}\n}\n`);
  writeFileSync(out, text);
}
