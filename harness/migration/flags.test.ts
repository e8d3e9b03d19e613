import { describe, expect, it } from 'vitest';
import { flagRecord, type FlagInput } from './flags.ts';

// A record as measured on this machine (quickstart, 100 Mbit/s): passes every check.
const good: FlagInput = {
  status: 'completed',
  total_ms: 8934,
  transferred_bytes: 103 * 2 ** 20,
  link_rate_mbit: 100,
  downtime_reported_ms: 262,
  downtime_event_ms: 380.8,
  downtime_observed_ms: 380.0,
  probe_interval_ms: 10,
  energy_j: 218,
  energy_coverage: 1,
  clock_uncertainty_ms: 0.3,
  engaged: { 'postcopy-ram': true },
  probe_outside: { lost: 0, sent: 5000 },
};
const codes = (r: FlagInput) => flagRecord(r).map((f) => f.code);

describe('flags on migration records', () => {
  it('a consistent record has none', () => {
    expect(flagRecord(good)).toEqual([]);
  });
  it('more bytes than the declared link can carry in that time', () => {
    // 103 MiB at a declared 10 Mbit/s needs 86 s, measured 8.9 s: the spec misdeclares the link
    const f = flagRecord({ ...good, link_rate_mbit: 10 });
    expect(f.map((x) => x.code)).toEqual(['faster_than_link']);
    expect(f[0].reason).toMatch(/declared link rate of 10 Mbit\/s/);
    // just under the bound (payload vs wire) is not flagged
    const boundMs = ((good.transferred_bytes! * 8) / 100e6) * 1000;
    expect(codes({ ...good, total_ms: boundMs * 0.99 })).toEqual([]);
    expect(codes({ ...good, total_ms: boundMs * 0.97 })).toEqual(['faster_than_link']);
  });
  it('observed and event downtime disagreeing beyond probe interval + 5 ms', () => {
    expect(codes({ ...good, downtime_observed_ms: 380.8 + 14.9 })).toEqual([]);
    expect(codes({ ...good, downtime_observed_ms: 380.8 + 15.1 })).toEqual(['downtime_disagrees']);
    // the network's switch after RESUME at its slowest measured here (+3.97 ms at a 1 ms probe) is no disagreement
    expect(codes({ ...good, probe_interval_ms: 1, downtime_observed_ms: 380.8 + 3.97 })).toEqual([]);
    expect(codes({ ...good, probe_interval_ms: 1, downtime_observed_ms: 387 })).toEqual(['downtime_disagrees']);
    // a probe that sent late around the outage knew the downtime only to its send gaps: that is the resolution then
    expect(codes({ ...good, probe_interval_ms: 1, downtime_observed_uncertainty_ms: 4, downtime_observed_ms: 387 })).toEqual([]);
    expect(codes({ ...good, probe_interval_ms: 1, downtime_observed_uncertainty_ms: 1, downtime_observed_ms: 387 })).toEqual([
      'downtime_disagrees',
    ]);
  });
  it('not for what is expected: bytes of a cut-off migration, the post-copy blackout', () => {
    expect(codes({ ...good, status: 'failed', link_rate_mbit: 10 })).toEqual([]);
    expect(
      codes({
        ...good,
        t_postcopy: '2026-11-30T14:16:13.111Z',
        downtime_observed_ms: 3030,
        downtime_event_ms: 828,
        downtime_reported_ms: 2,
      }),
    ).toEqual([]);
  });
  it('reported downtime above the event downtime', () => {
    expect(codes({ ...good, downtime_reported_ms: 390 })).toEqual(['reported_above_event']);
  });
  it('probe loss outside migrations', () => {
    expect(codes({ ...good, probe_outside: { lost: 5, sent: 5000 } })).toEqual([]);
    expect(codes({ ...good, probe_outside: { lost: 50, sent: 5000 } })).toEqual(['probe_loss_outside']);
  });
  it('a requested feature that never engaged', () => {
    const f = flagRecord({ ...good, engaged: { 'postcopy-ram': false, multifd: null } });
    expect(f.map((x) => x.code)).toEqual(['not_engaged']);
    expect(f[0].reason).toMatch(/postcopy-ram/);
  });
  it('a clock offset coarser than the downtime resolution', () => {
    expect(codes({ ...good, clock_uncertainty_ms: 15 })).toEqual(['clock_offset']);
  });
  it('an energy figure with thin power coverage', () => {
    expect(codes({ ...good, energy_coverage: 0.5 })).toEqual(['energy_coverage']);
    expect(codes({ ...good, energy_coverage: 0.5, energy_j: null })).toEqual([]);
  });
  it('missing fields (failed migrations, older records) are not flagged', () => {
    expect(flagRecord({ status: 'failed' })).toEqual([]);
    expect(codes({ ...good, status: 'cancelled', downtime_observed_ms: null, downtime_event_ms: null })).toEqual([]);
  });
});
