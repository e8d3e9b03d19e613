/**
 * Test support, not product code: turns one migration of a run directory into
 * a MigrationObservation fixture (test/fixtures/migrations/*.json) together
 * with the record the harness derived at the time, so derive.ts can be
 * unit-tested against real sequences.
 *
 *   npx tsx test/support/migration-fixture.ts <runDir> <migrationId> <out.json> [probe stride]
 *
 * Run directories written before the control code recorded everything
 * (migration_control samples; raw total-time/setup-time/downtime/error-desc in
 * migration_progress) are completed from the record; the fixture's `note` says
 * which parts were recorded and which reconstructed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ProbeRecord } from '../../harness/native/programs.ts';
import { parseDuration } from '../../harness/spec/units.ts';
import { NUMERIC_METRICS } from '../../harness/store/schema/migration.ts';
import type { Sample } from '../../harness/store/sample.ts';
import {
  emptyControlFacts,
  probeWindow,
  resumeEvent,
  type DerivedMeasures,
  type MigrationObservation,
  type ObservedEvent,
  type ObservedQuery,
  type QueryMigrateAnswer,
} from '../../harness/migration/derive.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';

export interface MigrationFixture {
  source: { run: string; migration: string };
  /** What the harness derived at the time (migrations.jsonl), restricted to the derived fields. */
  recorded: Partial<DerivedMeasures>;
  observation: MigrationObservation;
}

/** Fields of the record the derivation reproduces (t_postcopy is newer than the recorded runs). */
export const DERIVED_FIELDS = [
  'status',
  'reason',
  't_cmd',
  't_stop',
  't_resume',
  't_done',
  'total_ms_harness',
  ...NUMERIC_METRICS.filter((f) => f !== 'energy_j'),
  'link_rate_mbit',
  'downtime_limit_ms',
  'probe_interval_ms',
] as const;

const readLines = <T>(file: string): T[] => {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
};

/** Epoch ms with the µs digits iso() writes (Date.parse drops them). */
export function isoToMs(t: string): number {
  const m = /\.(\d{3})(\d{3})Z$/.exec(t);
  return m ? Date.parse(t.replace(/\.(\d{3})\d{3}Z$/, '.$1Z')) + Number(m[2]) / 1000 : Date.parse(t);
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** Keeps every lost probe with its answered neighbours, a window around RESUME, the first record, and every `stride`-th of the rest. */
function thinProbe(records: ProbeRecord[], resumeMs: number | null, stride: number): ProbeRecord[] {
  const sorted = [...records].sort((a, b) => a.seq - b.seq);
  const keep = new Set<number>([0, sorted.length - 1]);
  sorted.forEach((r, i) => {
    if (r.recvUs === null) for (const j of [i - 1, i, i + 1]) if (j >= 0 && j < sorted.length) keep.add(j);
    if (i % stride === 0) keep.add(i);
    if (resumeMs !== null && r.sentUs >= (resumeMs - 100) * 1000 && r.sentUs <= (resumeMs + 500) * 1000) keep.add(i);
  });
  // and the first reply after RESUME wherever it is
  if (resumeMs !== null) {
    const i = sorted.findIndex((r) => r.recvUs !== null && r.sentUs >= resumeMs * 1000);
    if (i >= 0) keep.add(i);
  }
  return sorted.filter((_, i) => keep.has(i));
}

export function extractFixture(runDir: string, migrationId: string, probeStride = 50): MigrationFixture {
  const need = (v: number | null, field: string): number => {
    if (v === null) throw new Error(`${runDir}: migration ${migrationId} has no ${field}`);
    return v;
  };
  const records = readLines<MigrationRecord>(join(runDir, 'migrations.jsonl'));
  const rec = records.find((r) => r.id === migrationId);
  if (!rec) throw new Error(`${runDir}: no migration ${migrationId} in migrations.jsonl`);
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as {
    spec: { migration: { mode: 'live' | 'postcopy'; max_time: string } };
  };
  const samples = (m: string) => readLines<Sample>(join(runDir, 'samples', `${m}.jsonl`));
  const mine = (s: Sample) => s.tags.migration === migrationId;
  const recorded: string[] = [];
  const rebuilt: string[] = [];

  const control = samples('migration_control').filter(mine);
  const ctl = (action: string) => control.find((s) => s.fields.action === action);
  const tCmd = ctl('migrate') ? Date.parse(ctl('migrate')!.t) : rec.t_cmd ? Date.parse(rec.t_cmd) : null;
  (ctl('migrate') ? recorded : rebuilt).push(
    ctl('migrate') ? 'tCmdMs (migration_control)' : "tCmdMs from the record's t_cmd (same clock reading)",
  );

  // a migration's destination listener outlived it in older runs: events after the next migration's command are not its own
  const nextCmd =
    records
      .map((r) => (r.t_cmd ? Date.parse(r.t_cmd) : Infinity))
      .filter((t) => tCmd !== null && t > tCmd)
      .sort((a, b) => a - b)[0] ?? Infinity;
  const allEvents = samples('qmp_event').filter(mine);
  const events: ObservedEvent[] = allEvents
    .map((s) => ({
      side: s.tags.side as 'src' | 'dst',
      event: String(s.fields.event),
      timestampMs: isoToMs(s.t),
      receivedAtMs: Number(s.fields.received_ms),
      data: JSON.parse(String(s.fields.data ?? '{}')) as Record<string, unknown>,
    }))
    .filter((e) => e.timestampMs < nextCmd);
  recorded.push(
    `events (qmp_event, QEMU timestamps to the µs${allEvents.length > events.length ? `; ${allEvents.length - events.length} stale ones after the next migration's command dropped` : ''})`,
  );

  const progress = samples('migration_progress').filter(mine);
  const raw = progress.some((s) => 'setup_time_ms' in s.fields);
  const queries: ObservedQuery[] = progress.map((s, i) => {
    const f = s.fields;
    const a: QueryMigrateAnswer = {};
    if (typeof f.status === 'string') a.status = f.status;
    if (f.transferred !== null) {
      a.ram = {
        transferred: num(f.transferred)!,
        remaining: num(f.remaining)!,
        total: num(f.total)!,
        'dirty-pages-rate': num(f.dirty_pages_rate)!,
        mbps: num(f.mbps)!,
        'dirty-sync-count': num(f.dirty_sync_count)!,
      };
    }
    if (num(f.expected_downtime_ms) !== undefined) a['expected-downtime'] = num(f.expected_downtime_ms);
    if (raw) {
      if (num(f.total_time_ms) !== undefined) a['total-time'] = num(f.total_time_ms);
      if (num(f.setup_time_ms) !== undefined) a['setup-time'] = num(f.setup_time_ms);
      if (num(f.downtime_ms) !== undefined) a.downtime = num(f.downtime_ms);
      if (typeof f.error_desc === 'string') a['error-desc'] = f.error_desc;
    } else {
      // QEMU reports total-time and setup-time exactly when it reports RAM statistics, downtime only once completed
      if (a.ram) a['total-time'] = num(f.elapsed_ms);
      if (a.ram && rec.setup_ms !== null) a['setup-time'] = rec.setup_ms;
      if (i === progress.length - 1 && a.status === 'completed' && rec.downtime_reported_ms !== null) a.downtime = rec.downtime_reported_ms;
    }
    return { tMs: Date.parse(s.t), answer: a };
  });
  recorded.push(
    `query-migrate answers (migration_progress: status, RAM statistics, expected-downtime, harness send time${
      raw ? ', total-time, setup-time, downtime, error-desc' : ''
    })`,
  );
  if (!raw) {
    rebuilt.push(
      'total-time = elapsed_ms on answers with RAM statistics',
      "setup-time on those answers = the record's setup_ms",
      "downtime on the final completed answer = the record's downtime_reported_ms",
      'error-desc: not stored, left out',
    );
  }

  const tEnd = ctl('end') ? Date.parse(ctl('end')!.t) : (queries.at(-1)?.tMs ?? null);
  (ctl('end') ? recorded : rebuilt).push(
    ctl('end') ? 'tEndMs (migration_control)' : 'tEndMs = send time of the last query-migrate (the true value is a little later)',
  );

  const c = emptyControlFacts();
  const maxTimeMs = parseDuration(manifest.spec.migration.max_time)!;
  if (control.length > 0) {
    c.postcopyStartMs = ctl('postcopy_start') ? Date.parse(ctl('postcopy_start')!.t) : null;
    c.cancelledAtMs = ctl('cancel') ? Date.parse(ctl('cancel')!.t) : null;
    c.cancelStuck = ctl('cancel_stuck') !== undefined;
    const exit = ctl('dst_exit');
    c.dstExit = exit ? { tMs: Date.parse(exit.t), description: String(exit.fields.detail) } : null;
    const lost = ctl('dst_lost');
    c.dstLost = lost ? { tMs: Date.parse(lost.t), description: String(lost.fields.detail) } : null;
    c.srcUnanswered = ctl('src_unanswered') ? String(ctl('src_unanswered')!.fields.detail) : null;
    c.error = ctl('error') ? String(ctl('error')!.fields.detail) : null;
    recorded.push('control facts (migration_control)');
  } else {
    const reason = rec.reason ?? '';
    if (rec.status === 'cancelled' || reason.includes('max_time')) {
      const q = queries.find((x) => tCmd !== null && x.tMs - tCmd > maxTimeMs);
      c.cancelledAtMs = q?.tMs ?? null;
    }
    c.cancelStuck = reason.includes('did not stop within 60 s');
    if (reason.startsWith('destination QEMU exited')) c.dstExit = { tMs: tEnd ?? 0, description: reason };
    const unanswered = /^source QEMU stopped answering: (.*)$/.exec(reason);
    if (unanswered) c.srcUnanswered = unanswered[1];
    rebuilt.push(
      "control facts from the record's status and reason (cancel time = the first query past max_time; a destination exit " +
        'with its description, time = tEndMs); post-copy switch time not stored (null)',
    );
  }

  const resume = resumeEvent({ events } as MigrationObservation);
  const all = samples('probe')
    .filter((s) => s.tags.vm === rec.vm && s.tags.experiment === rec.experiment)
    .map((s): ProbeRecord => {
      const f = s.fields;
      return { seq: Number(f.seq), sentUs: Number(f.sent_us), recvUs: f.recv_us === null ? null : Number(f.recv_us) };
    });
  let probe: ProbeRecord[] | null = null;
  if (all.length > 0 && tCmd !== null) {
    const until = (tEnd ?? tCmd) + 30_000;
    const window = probeWindow(all, tCmd).filter((r) => r.sentUs <= until * 1000);
    probe = thinProbe(window, resume?.timestampMs ?? null, probeStride);
    recorded.push(
      `probe records (probe.jsonl) from the last reply before tCmd to tEndMs + 30 s: ${window.length} records, thinned to ${probe.length} ` +
        `(every lost probe with its neighbours by seq, all sent from RESUME - 100 ms to RESUME + 500 ms, the first reply after RESUME, ` +
        `the first and last, and every ${probeStride}th of the rest; outages and the first reply after RESUME are unchanged by this)`,
    );
  }

  const observation: MigrationObservation = {
    version: 1,
    id: migrationId,
    config: {
      mode: manifest.spec.migration.mode,
      downtimeLimitMs: need(rec.downtime_limit_ms, 'downtime_limit_ms'),
      maxTimeMs,
      probeIntervalMs: need(rec.probe_interval_ms, 'probe_interval_ms'),
      linkRateBps: rec.link_rate_mbit === null ? null : rec.link_rate_mbit * 1e6,
    },
    tCmdMs: tCmd,
    tEndMs: tEnd,
    events,
    queries,
    probe,
    control: c,
    note:
      `From run ${basename(runDir)}, migration ${migrationId}. Recorded: ${recorded.join('; ')}. ` +
      `Reconstructed: ${rebuilt.length ? rebuilt.join('; ') : 'nothing'}. Config: mode and max_time from the manifest's spec, ` +
      'downtime limit, probe interval and link rate from the record.',
  };
  const picked: Record<string, unknown> = {};
  for (const k of DERIVED_FIELDS) picked[k] = rec[k];
  return { source: { run: basename(runDir), migration: migrationId }, recorded: picked as Partial<DerivedMeasures>, observation };
}

/** JSON with one line per event, query and probe record: small, and diffs stay readable. */
export function formatFixture(f: MigrationFixture): string {
  const o = f.observation;
  const rows = (xs: unknown[] | null) => (xs === null ? 'null' : `[\n${xs.map((x) => `   ${JSON.stringify(x)}`).join(',\n')}\n  ]`);
  const head = { ...o, events: 0, queries: 0, probe: 0 };
  const obsText = JSON.stringify(head, null, 1)
    .replace(/\n/g, '\n ')
    .replace('"events": 0', `"events": ${rows(o.events)}`)
    .replace('"queries": 0', `"queries": ${rows(o.queries)}`)
    .replace('"probe": 0', `"probe": ${rows(o.probe)}`);
  return `{\n "source": ${JSON.stringify(f.source)},\n "recorded": ${JSON.stringify(f.recorded)},\n "observation": ${obsText}\n}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [runDir, id, out, stride] = process.argv.slice(2);
  if (!runDir || !id || !out) {
    process.stderr.write('usage: npx tsx test/support/migration-fixture.ts <runDir> <migrationId> <out.json> [probe stride]\n');
    process.exit(2);
  }
  writeFileSync(out, formatFixture(extractFixture(runDir, id, stride ? Number(stride) : undefined)));
}
