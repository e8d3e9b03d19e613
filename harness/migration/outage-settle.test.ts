import { describe, expect, it, vi } from 'vitest';
import { computeOutages, type ProbeRecord } from '../native/programs.ts';
import type { Sample } from '../store/sample.ts';
import { deriveMigration, type MigrationObservation } from './derive.ts';
import { syntheticMigration } from './derive.test-helpers.ts';
import { pendingSeqs, settleGraceMs, withPendingLost } from './outage-settle.ts';
import { ProbeStream } from './probe-stream.ts';

const I = 10; // probe interval, ms
const T0 = 1_795_000_000_000; // ms

/** Probe `seq` sent on schedule (plus `lateUs`), answered after 300 µs unless lost. */
const rec = (seq: number, lost: boolean, lateUs = 0): ProbeRecord => {
  const sentUs = (T0 + seq * I) * 1000 + lateUs;
  return { seq, sentUs, recvUs: lost ? null : sentUs + 300 };
};

/** A migration: command at +100 ms, STOP at +395 ms, RESUME at +695 ms; probes 40..69 lost, 70 the first reply after RESUME. */
function observation(probe: ProbeRecord[], probePending?: number[]): MigrationObservation {
  return syntheticMigration({
    t0: T0,
    intervalMs: I,
    at: { cmd: 100, stop: 395, completed: 690, resume: 695, end: 700 },
    answer: { status: 'completed', 'total-time': 590, downtime: 300, ram: { transferred: 1 } },
    probe,
    probePending,
  });
}

const lostRun = (s: number) => s >= 40 && s <= 69;

describe('settle point', () => {
  it('grace: two probe intervals, at least 20 ms', () => {
    expect(settleGraceMs(1)).toBe(20);
    expect(settleGraceMs(10)).toBe(20);
    expect(settleGraceMs(50)).toBe(100);
  });

  it('pending: the seqs before the first reply without a record', () => {
    const have = new Set([3, 4, 7]);
    expect(pendingSeqs(3, 9, (s) => have.has(s))).toEqual([5, 6, 8]);
    expect(pendingSeqs(5, 5, () => false)).toEqual([]);
  });
});

describe('observed downtime with timeouts after the settle point', () => {
  const all = Array.from({ length: 100 }, (_, s) => rec(s, lostRun(s)));
  // at the settle point (first reply after RESUME, #70, read) the timeouts of 40..69 have not arrived yet
  const atSettle = all.filter((r) => r.seq <= 72 && !lostRun(r.seq));
  const pending = pendingSeqs(0, 70, (s) => atSettle.some((r) => r.seq === s));

  it('is the same as with every timeout in before the settle point', () => {
    expect(pending).toEqual(Array.from({ length: 30 }, (_, i) => 40 + i));
    const before = deriveMigration(observation(all));
    const after = deriveMigration(observation(atSettle, pending));
    expect(before.downtime_observed_ms).toBe(300); // (#70 - #39) - one interval
    expect(after.downtime_observed_ms).toBe(before.downtime_observed_ms);
    expect(after.downtime_observed_uncertainty_ms).toBe(before.downtime_observed_uncertainty_ms);
    expect(after.postop_ms).toBe(before.postop_ms);
  });

  it('without the pending seqs the missing probes would hide the outage (why they are recorded)', () => {
    expect(deriveMigration(observation(atSettle)).downtime_observed_ms).toBe(0);
  });

  it('a timeout that arrived between the settle point and the derivation wins over the inferred record', () => {
    const some = [...atSettle, ...all.filter((r) => r.seq >= 40 && r.seq <= 45)];
    const out = withPendingLost(some, pending);
    expect(out.filter((r) => r.seq === 42)).toEqual([all[42]]);
    expect(out).toHaveLength(some.length + 24);
    expect(deriveMigration(observation(some, pending)).downtime_observed_ms).toBe(300);
  });

  it('a late prober: the duration is still exact (it depends only on the answered probes around the run)', () => {
    // the sender woke 5 ms late for #40 (a starved machine): its recorded send time is later than the schedule
    const late = Array.from({ length: 100 }, (_, s) => rec(s, lostRun(s), s === 40 ? 5000 : 0));
    const withAll = deriveMigration(observation(late));
    const inferred = deriveMigration(
      observation(
        late.filter((r) => !lostRun(r.seq)),
        pending,
      ),
    );
    expect(inferred.downtime_observed_ms).toBe(withAll.downtime_observed_ms);
    // its ± is from the interpolated send times (one interval here); the recorded ones widen it
    expect(inferred.downtime_observed_uncertainty_ms).toBe(10);
    expect(withAll.downtime_observed_uncertainty_ms).toBe(15);
  });

  it('inferred records stay within the records they were given (pending seqs outside are left out)', () => {
    const out = withPendingLost(
      atSettle.filter((r) => r.seq >= 30),
      [5, 41, 200],
    );
    expect(out.filter((r) => r.recvUs === null).map((r) => r.seq)).toEqual([41]);
    expect(out.find((r) => r.seq === 41)!.sentUs).toBe(rec(41, true).sentUs);
  });
});

describe('ProbeStream.settle', () => {
  function stream() {
    const written: Sample[] = [];
    const p = new ProbeStream('ns', '10.0.0.1', I, { vm: 'vm1' }, (s) => written.push(...s));
    return { p, written };
  }

  it('takes the probes before the first reply as lost; their timeouts arriving later keep their own migration tag', async () => {
    const { p, written } = stream();
    p.setTags({ vm: 'vm1', migration: 'm1' });
    for (let s = 0; s < 100; s++) if (!lostRun(s) && s <= 72) p.add(rec(s, false));
    const pending = await p.settle(rec(70, false), 0);
    expect(pending).toEqual(Array.from({ length: 30 }, (_, i) => 40 + i));
    // the next migration starts before the timeouts of 40..69 arrive
    p.setTags({ vm: 'vm1', migration: 'm2' });
    for (let s = 40; s <= 69; s++) p.add(rec(s, true));
    for (let s = 73; s < 100; s++) p.add(rec(s, false));
    await p.stop();
    const probes = written.filter((x) => x.measurement === 'probe');
    const tagOf = (seq: number) => probes.find((x) => x.fields.seq === seq)!.tags.migration;
    expect(tagOf(45)).toBe('m1');
    expect(tagOf(72)).toBe('m1');
    expect(tagOf(73)).toBe('m2');
    // the samples re-derive the outage the record derived at the settle point
    const fromSamples = probes.map((x) => ({
      seq: x.fields.seq as number,
      sentUs: x.fields.sent_us as number,
      recvUs: x.fields.recv_us as number | null,
    }));
    const atSettle = deriveMigration(
      observation(
        Array.from({ length: 73 }, (_, s) => rec(s, false)).filter((r) => !lostRun(r.seq)),
        pending,
      ),
    );
    expect(deriveMigration(observation(fromSamples)).downtime_observed_ms).toBe(atSettle.downtime_observed_ms);
    expect(computeOutages(fromSamples, I)).toEqual(computeOutages(withPendingLost(fromSamples.slice(0, 73), pending), I));
    expect(p.inference).toEqual({ inferred: 30, answered: 0 });
    expect(written.some((x) => x.measurement === 'probe_inference')).toBe(false);
  });

  it('records a reply to a probe it took as lost: the assumption failed, the number is not changed silently', async () => {
    const { p, written } = stream();
    p.setTags({ vm: 'vm1', migration: 'm1' });
    for (let s = 0; s <= 72; s++) if (!lostRun(s)) p.add(rec(s, false));
    await p.settle(rec(70, false), 0);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((l) => lines.push(String(l)) > 0);
    try {
      p.add(rec(45, false));
    } finally {
      spy.mockRestore();
    }
    expect(p.inference).toEqual({ inferred: 30, answered: 1 });
    expect(lines.join('')).toMatch(/#45 .* answered after all/);
    p.flush();
    const note = written.find((x) => x.measurement === 'probe_inference')!;
    expect(note.fields.seq).toBe(45);
    expect(note.tags.migration).toBe('m1');
  });
});

describe('ProbeStream.stop after a settle point', () => {
  it('does not wait out the timeouts of probes already taken as lost: a second signal has mb-probe report them', async () => {
    const p = new ProbeStream('ns', '10.0.0.1', I, { vm: 'vm1' }, () => undefined);
    for (let s = 0; s <= 72; s++) if (!lostRun(s)) p.add(rec(s, false));
    await p.settle(rec(70, false), 0);
    // a stand-in for mb-probe behind a launcher: the first SIGINT stops sending; it would then wait 1 s for the
    // outstanding probes; the second reports them lost at once and it exits
    const signals: number[] = [];
    let exit = () => undefined as void;
    const exited = new Promise<void>((r) => (exit = r));
    const t0 = Date.now();
    const fake = {
      signal: async () => {
        signals.push(Date.now() - t0);
        if (signals.length === 2) {
          for (let s = 40; s <= 69; s++) p.add(rec(s, true));
          exit();
        }
      },
      stop: async () => undefined,
    };
    setTimeout(() => {
      for (let s = 40; s <= 69; s++) p.add(rec(s, true));
      exit();
    }, 1000);
    Object.assign(p as unknown as Record<string, unknown>, { launched: fake, exited });
    await p.stop();
    expect(signals).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(p.inference).toEqual({ inferred: 30, answered: 0 });
  });

  it('waits as before when a probe not taken as lost is outstanding', async () => {
    const p = new ProbeStream('ns', '10.0.0.1', I, { vm: 'vm1' }, () => undefined);
    for (let s = 0; s <= 72; s++) if (!lostRun(s) && s !== 71) p.add(rec(s, false));
    await p.settle(rec(70, false), 0);
    const signals: number[] = [];
    let exit = () => undefined as void;
    const exited = new Promise<void>((r) => (exit = r));
    setTimeout(() => {
      for (let s = 40; s <= 69; s++) p.add(rec(s, true));
      p.add(rec(71, false));
      exit();
    }, 300);
    const fake = { signal: async () => void signals.push(1), stop: async () => undefined };
    Object.assign(p as unknown as Record<string, unknown>, { launched: fake, exited });
    await p.stop();
    expect(signals).toHaveLength(1);
  });
});
