import { describe, expect, it } from 'vitest';
import { computeOutages, type ProbeRecord } from '../native/programs.ts';
import type { Sample } from '../store/sample.ts';
import { ProbeStream, recordProbeFacts, type ProbeStreamOptions } from './probe-stream.ts';

const sample = (seq: number): Sample => ({ t: new Date(seq).toISOString(), measurement: 'probe', tags: {}, fields: { seq } });

describe('ProbeStream flush when the run directory cannot take samples', () => {
  it('keeps the batch (in order) and hands it over once writing works again', () => {
    const written: Sample[] = [];
    let full = true;
    const p = new ProbeStream('ns', '10.0.0.1', 10, {}, (s) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      written.push(...s);
    });
    const pending = (p as unknown as { pending: Sample[] }).pending;
    pending.push(sample(1), sample(2));
    expect(() => p.flush()).toThrow(/ENOSPC/);
    (p as unknown as { pending: Sample[] }).pending.push(sample(3));
    full = false;
    p.flush();
    expect(written.map((s) => s.fields.seq)).toEqual([1, 2, 3]);
  });
});

const T0 = 1_795_000_000_000_000; // epoch µs

/** A stream fed by hand (no process): records in the order given, samples collected. */
function fed(intervalMs: number, order: ProbeRecord[], opts: ProbeStreamOptions = {}) {
  const written: Sample[] = [];
  const p = new ProbeStream('ns', '10.0.0.1', intervalMs, { vm: 'vm1' }, (s) => written.push(...s), undefined, opts);
  for (const r of order) p.add(r);
  return { p, written, probes: () => written.filter((s) => s.measurement === 'probe').map((s) => s.fields.seq as number) };
}

const rec = (seq: number, intervalMs: number, lost: boolean): ProbeRecord => {
  const sentUs = T0 + seq * intervalMs * 1000;
  return { seq, sentUs, recvUs: lost ? null : sentUs + 200 };
};

describe('ProbeStream samples', () => {
  it('at 10 ms writes every probe, as before', async () => {
    const { p, probes } = fed(
      10,
      Array.from({ length: 50 }, (_, s) => rec(s, 10, s === 20)),
    );
    await p.stop();
    expect(probes()).toEqual(Array.from({ length: 50 }, (_, s) => s));
  });

  it('at 1 ms writes every 10th probe, and every probe within 100 ms of a lost one; outages re-derive exactly', async () => {
    const n = 3000;
    const lost = (s: number) => s >= 1500 && s <= 1899;
    // lost probes are reported after their timeout: they arrive late, out of order
    const answered = Array.from({ length: n }, (_, s) => rec(s, 1, lost(s))).filter((r) => r.recvUs !== null);
    const order = [...answered.filter((r) => r.seq < 2900), ...Array.from({ length: 400 }, (_, i) => rec(1500 + i, 1, true))];
    order.push(...answered.filter((r) => r.seq >= 2900));
    const { p, probes, written } = fed(1, order);
    await p.stop();
    const kept = new Set(probes());
    for (let s = 0; s < n; s++) {
      const want = s % 10 === 0 || (s >= 1400 && s <= 1999);
      expect(kept.has(s), `seq ${s}`).toBe(want);
    }
    const fromSamples = written
      .filter((s) => s.measurement === 'probe')
      .map((s) => ({ seq: s.fields.seq as number, sentUs: s.fields.sent_us as number, recvUs: s.fields.recv_us as number | null }));
    expect(computeOutages(fromSamples, 1)).toEqual(computeOutages(p.records, 1));
    // what thinning leaves out is counted in probe_stats
    const stats = written.filter((s) => s.measurement === 'probe_stats');
    expect(stats.reduce((a, s) => a + (s.fields.sent as number), 0)).toBe(n);
    expect(stats.reduce((a, s) => a + (s.fields.lost as number), 0)).toBe(400);
    expect(stats.reduce((a, s) => a + (s.fields.written as number), 0)).toBe(kept.size);
  });

  it('tags each sample with the tags current when its probe was sent (the highest seq seen at setTags)', async () => {
    const { p, written } = fed(
      1,
      Array.from({ length: 300 }, (_, s) => rec(s, 1, false)),
    );
    p.setTags({ vm: 'vm1', migration: 'm1' });
    for (let s = 300; s < 600; s++) p.add(rec(s, 1, false));
    await p.stop();
    const tagOf = (seq: number) => written.find((s) => s.measurement === 'probe' && s.fields.seq === seq)!.tags.migration;
    expect(tagOf(290)).toBeUndefined();
    expect(tagOf(300)).toBe('m1');
  });
});

describe("ProbeStream: the probe's own loss and memory", () => {
  it('counts loss outside marked migrations, also after old records left memory', () => {
    const t0Ms = T0 / 1000;
    const { p } = fed(1, []);
    // probes 0..9999 at 1 ms; 2 lost on their own (300, 8000), a migration 4000..5999 ms with an outage 5000..5400
    const lost = (s: number) => s === 300 || s === 8000 || (s >= 5000 && s <= 5400);
    for (let s = 0; s < 7000; s++) p.add(rec(s, 1, lost(s)));
    p.markMigration(t0Ms + 4000, t0Ms + 5999);
    const before = p.lossOutside();
    expect(before).toEqual({ sent: 7000 - 2000 - 0, lost: 1 });
    p.forgetBefore(t0Ms + 6500);
    expect(p.records.length).toBe(7000 - 6499);
    expect(p.lossOutside()).toEqual(before);
    for (let s = 7000; s < 10_000; s++) p.add(rec(s, 1, lost(s)));
    expect(p.lossOutside()).toEqual({ sent: 8000, lost: 2 });
  });

  it('recordProbeFacts marks the migration and fills the record', () => {
    const { p } = fed(
      1,
      Array.from({ length: 100 }, (_, s) => rec(s, 1, s === 50)),
    );
    const r: { t_cmd: string | null; probe_outside?: { sent: number; lost: number } | null } = {
      t_cmd: new Date(T0 / 1000 + 40).toISOString(),
    };
    recordProbeFacts(p, r);
    // the migration window runs from t_cmd to now: the loss at 50 is inside it
    expect(r.probe_outside).toEqual({ sent: 40, lost: 0 });
  });
});
