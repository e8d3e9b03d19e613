import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DERIVED_FIELDS, type MigrationFixture } from '../../test/support/migration-fixture.ts';
import { deriveMigration, firstReplySince, migrationEndMs, type MigrationObservation } from './derive.ts';
import { syntheticMigration } from './derive.test-helpers.ts';

const DIR = join(import.meta.dirname, '../../test/fixtures/migrations');
const load = (name: string): MigrationFixture => JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as MigrationFixture;
const copy = (o: MigrationObservation): MigrationObservation => structuredClone(o);

/** QMP timestamps are stored to the µs: differences of two of them carry ~1e-4 ms of float noise. */
const NOISE_MS = 1e-3;

describe('deriveMigration reproduces what the harness recorded from real migrations', () => {
  const names = readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''));
  it('has a fixture for every kind of sequence', () => {
    expect(names.sort()).toEqual(expect.arrayContaining(['cancelled', 'completed', 'failed', 'postcopy']));
  });
  for (const name of names) {
    it(name, () => {
      const f = load(name);
      const got = deriveMigration(f.observation);
      for (const k of DERIVED_FIELDS) {
        const want = f.recorded[k];
        if (typeof want === 'number') {
          expect(got[k], k).toBeTypeOf('number');
          expect(Math.abs((got[k] as number) - want), `${k}: got ${got[k]}, recorded ${want}`).toBeLessThanOrEqual(NOISE_MS);
        } else {
          expect(got[k], k).toEqual(want);
        }
      }
    });
  }
});

describe('the recorded sequences are what they claim to be', () => {
  it('completed: stopped, resumed, probe outage close to the event downtime', () => {
    const d = deriveMigration(load('completed').observation);
    expect(d.status).toBe('completed');
    expect(d.downtime_event_ms!).toBeGreaterThan(d.downtime_reported_ms!);
    expect(Math.abs(d.downtime_observed_ms! - d.downtime_event_ms!)).toBeLessThan(3 * d.probe_interval_ms!);
    expect(d.t_postcopy).toBeNull();
  });

  it('post-copy engaged: the source went postcopy-active between the switch and STOP... RESUME', () => {
    const o = load('postcopy').observation;
    const d = deriveMigration(o);
    expect(d.status).toBe('completed');
    expect(o.queries.some((q) => q.answer.status === 'postcopy-active')).toBe(true);
    expect(d.t_postcopy).not.toBeNull();
    // QEMU reports a tiny downtime in post-copy while the guest, faulting pages over the link, is out far longer
    expect(d.downtime_reported_ms!).toBeLessThan(10);
    expect(d.downtime_observed_ms!).toBeGreaterThan(d.downtime_event_ms!);
  });

  it('cancelled: statistics from the last answer that still had RAM figures', () => {
    const o = load('cancelled').observation;
    expect(o.queries.at(-1)!.answer.status).toBe('cancelled');
    expect(o.queries.at(-1)!.answer.ram).toBeUndefined();
    const d = deriveMigration(o);
    expect(d.status).toBe('cancelled');
    expect(d.reason).toBe('not completed within max_time 15s; cancelled');
    const lastRam = o.queries.filter((q) => q.answer.ram).at(-1)!.answer;
    expect(d.transferred_bytes).toBe(lastRam.ram!.transferred);
    expect(d.total_ms).toBe(lastRam['total-time']);
    expect([d.t_stop, d.downtime_event_ms, d.downtime_observed_ms, d.downtime_reported_ms]).toEqual([null, null, null, null]);
  });

  it('failed: the destination exit is the reason; the bytes so far are kept', () => {
    const d = deriveMigration(load('failed').observation);
    expect(d.status).toBe('failed');
    expect(d.reason).toMatch(/^destination QEMU exited during the migration/);
    expect(d.transferred_bytes!).toBeGreaterThan(8 * 2 ** 20);
  });
});

describe('derivation rules', () => {
  it('QEMU says why when the destination did not visibly exit', () => {
    const o = copy(load('failed').observation);
    o.control.dstExit = null;
    o.queries.at(-1)!.answer['error-desc'] = 'Unable to write to socket: Connection reset by peer';
    const d = deriveMigration(o);
    expect(d.reason).toBe('migration failed: Unable to write to socket: Connection reset by peer');
  });

  it('a destination connection cut (QMP closed, QEMU alive) is the reason of the migration we cancelled for it', () => {
    const o = copy(load('cancelled').observation);
    o.control.cancelledAtMs = null;
    o.control.dstLost = {
      tMs: o.queries.at(-1)!.tMs,
      description: 'lost the connection to the destination r1-h2 (its QMP closed while its QEMU still ran)',
    };
    expect(deriveMigration(o)).toMatchObject({
      status: 'failed',
      reason:
        'lost the connection to the destination r1-h2 (its QMP closed while its QEMU still ran); migration cancelled, the guest stays on the source',
    });
    // an exit seen as well is the stronger explanation
    o.control.dstExit = { tMs: o.queries.at(-1)!.tMs, description: 'destination QEMU exited during the migration (signal SIGKILL)' };
    expect(deriveMigration(o).reason).toBe('destination QEMU exited during the migration (signal SIGKILL)');
  });

  it('a cancel we sent wins over a destination that went away; a source that stopped answering is named', () => {
    const o = copy(load('failed').observation);
    o.control.cancelledAtMs = o.queries.at(-1)!.tMs;
    expect(deriveMigration(o)).toMatchObject({ status: 'cancelled', reason: 'not completed within max_time 150s; cancelled' });
    const p = copy(load('cancelled').observation);
    p.queries.pop(); // the 'cancelled' answer never came
    p.control.srcUnanswered = 'QMP command query-migrate timed out after 10000 ms';
    expect(deriveMigration(p)).toMatchObject({
      status: 'cancelled',
      reason: 'source QEMU stopped answering: QMP command query-migrate timed out after 10000 ms',
    });
  });

  it('a source that stopped answering mid-migration ends at the harness time, not at an earlier status event', () => {
    const o = copy(load('completed').observation);
    const cut = o.queries.findIndex((q) => q.answer.status === 'active' && q.answer.ram!.transferred > 50e6);
    o.queries = o.queries.slice(0, cut + 1);
    o.tEndMs = o.queries.at(-1)!.tMs + 10_000;
    o.control.srcUnanswered = 'QMP socket closed';
    const d = deriveMigration(o);
    expect(d.status).toBe('failed');
    expect(d.total_ms_harness).toBe(o.tEndMs - o.tCmdMs!);
    expect(migrationEndMs(o)).toBe(o.tEndMs);
  });

  it('an error before the migrate command: failed with that message and no times', () => {
    const o = copy(load('completed').observation);
    Object.assign(o, { tCmdMs: null, tEndMs: null, events: [], queries: [], probe: null });
    o.control.error = 'QMP connect vm1.r1-h2.r0: timed out';
    const d = deriveMigration(o);
    expect(d).toMatchObject({
      status: 'failed',
      reason: 'QMP connect vm1.r1-h2.r0: timed out',
      t_cmd: null,
      t_done: null,
      total_ms: null,
      transferred_bytes: null,
    });
  });

  it('completed without a probe or without a reply after RESUME: no observed downtime, no post-operation time', () => {
    const o = copy(load('completed').observation);
    o.probe = null;
    expect(deriveMigration(o)).toMatchObject({ downtime_observed_ms: null, postop_ms: null });
    const resume = o.events.find((e) => e.event === 'RESUME')!.timestampMs;
    const p = copy(load('completed').observation);
    p.probe = p.probe!.filter((r) => r.sentUs < resume * 1000);
    const d = deriveMigration(p);
    expect(d).toMatchObject({ downtime_observed_ms: null, postop_ms: null });
    expect(d.downtime_event_ms).not.toBeNull();
  });

  it('observed downtime is the longest outage from the command to the first reply after RESUME, 0 when none', () => {
    const o = copy(load('completed').observation);
    const resume = o.events.find((e) => e.event === 'RESUME')!.timestampMs;
    const first = firstReplySince(o.probe!, resume)!;
    expect(deriveMigration(o).postop_ms).toBeCloseTo(first.sentUs / 1000 - resume, 6);
    // every probe answered: no outage
    o.probe = o.probe!.map((r) => ({ ...r, recvUs: r.recvUs ?? r.sentUs + 500 }));
    expect(deriveMigration(o).downtime_observed_ms).toBe(0);
    // a pause shorter than one interval can fall between two probes
    expect(deriveMigration(o).downtime_observed_uncertainty_ms).toBe(10);
  });

  it('observed downtime carries its uncertainty: ± one interval when the probe sent on schedule', () => {
    const d = deriveMigration(load('completed').observation);
    // the real prober sends within tens of µs of its schedule
    expect(d.downtime_observed_uncertainty_ms!).toBeGreaterThanOrEqual(10);
    expect(d.downtime_observed_uncertainty_ms!).toBeLessThan(10.5);
    const failed = deriveMigration(load('failed').observation);
    expect(failed.downtime_observed_uncertainty_ms).toBeNull();
  });

  it('a loss run that began before the command keeps its full length; one after the first reply is ignored', () => {
    const interval = 10;
    const t0 = 1_000_000; // ms
    const rec = (seq: number, lost: boolean) => ({
      seq,
      sentUs: (t0 + seq * interval) * 1000,
      recvUs: lost ? null : (t0 + seq * interval) * 1000 + 300,
    });
    // probes 0..99; lost 8..14 (crosses the command at seq 10), 40..44 (after RESUME's first reply at 30)
    const probe = Array.from({ length: 100 }, (_, s) => rec(s, (s >= 8 && s <= 14) || (s >= 40 && s <= 44)));
    const o = syntheticMigration({
      t0,
      intervalMs: interval,
      at: { cmd: 100, stop: 250, completed: 290, resume: 295, end: 300 },
      answer: { status: 'completed', 'total-time': 190, downtime: 40, 'setup-time': 1, ram: { transferred: 5, 'dirty-sync-count': 2 } },
      probe,
    });
    expect(o.probe![0].seq).toBe(7); // the window starts at the last reply before the command
    const d = deriveMigration(o);
    // probes 7 (answered) .. 15 (answered): (150 - 70) - 10 = 70 ms
    expect(d.downtime_observed_ms).toBe(70);
    expect(d.downtime_observed_uncertainty_ms).toBe(10);
    expect(d.postop_ms).toBe(5); // RESUME at +295, first reply to the probe sent at +300
    expect(d).toMatchObject({
      status: 'completed',
      total_ms: 190,
      downtime_reported_ms: 40,
      setup_ms: 1,
      transferred_bytes: 5,
      passes: 2,
      preop_ms: 150,
      downtime_event_ms: 45,
      t_done: new Date(t0 + 290).toISOString(),
      total_ms_harness: 190,
    });
  });

  it('total and downtime come from a completed answer re-read later when the first lacked them', () => {
    const o = copy(load('completed').observation);
    const last = o.queries.at(-1)!;
    const { downtime, 'total-time': total } = last.answer;
    delete last.answer.downtime;
    delete last.answer['total-time'];
    expect(deriveMigration(o)).toMatchObject({ total_ms: null, downtime_reported_ms: null });
    o.queries.push({ tMs: last.tMs + 100, answer: { ...last.answer, downtime, 'total-time': total } });
    expect(deriveMigration(o)).toMatchObject({ total_ms: total, downtime_reported_ms: downtime });
  });
});
