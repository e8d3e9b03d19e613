import { describe, expect, it } from 'vitest';
import { ClientSpec, ExperimentSpec } from '../spec/schema.ts';
import { clientId, opPath } from './clients.ts';
import { parseGuestReport, parseTraceLine, reportSample, WORKLOAD_HEARTBEAT } from './guest-reports.ts';
import { guestWorkloadLabel, guestWorkloadString, workloadWarmupMs } from './guest-spec.ts';
import { httperfArgs, parseHttperf } from './httperf.ts';
import { PhaseClock } from './phases.ts';
import { dirtyRateSupportFrom } from './qmp-dirty-rate.ts';

function vmWith(workload: unknown, clients: unknown[] = []) {
  return ExperimentSpec.parse({
    name: 't',
    testbed: { racks: [{ name: 'r1', hosts: 2 }] },
    vms: [{ name: 'vm1', host: 'r1-h1', workload, clients }],
  }).vms[0];
}

describe('PhaseClock', () => {
  it('labels before, during (open and closed windows), after', () => {
    const c = new PhaseClock();
    expect(c.phaseAt(5)).toBe('before');
    c.migrationStarted(10);
    expect(c.phaseAt(9)).toBe('before');
    expect(c.phaseAt(1e9)).toBe('during'); // still open
    c.migrationEnded(20);
    expect(c.phaseAt(10)).toBe('during');
    expect(c.phaseAt(20)).toBe('during');
    expect(c.phaseAt(21)).toBe('after');
    c.migrationStarted(30);
    c.migrationEnded(40);
    expect(c.phaseAt(25)).toBe('after');
    expect(c.phaseAt(35)).toBe('during');
    expect(c.migrationIndexAt(25)).toBe(0);
    expect(c.migrationIndexAt(35)).toBe(1);
    expect(c.migrationIndexAt(5)).toBe(-1);
  });
  it('rejects misuse instead of mislabelling', () => {
    const c = new PhaseClock();
    expect(() => c.migrationEnded(1)).toThrow(/without migrationStarted/);
    c.migrationStarted(10);
    expect(() => c.migrationEnded(5)).toThrow(/before it started/);
  });
  it('merges overlapping migrations of a parallel plan into one window', () => {
    const c = new PhaseClock();
    c.migrationStarted(10);
    c.migrationStarted(12);
    c.migrationEnded(30); // the second ends first
    expect(c.phaseAt(40)).toBe('during'); // the first still runs
    c.migrationEnded(25);
    expect(c.migrations).toEqual([{ startMs: 10, endMs: 30 }]);
    expect(c.phaseAt(31)).toBe('after');
    c.migrationStarted(50);
    c.migrationEnded(60);
    expect(c.migrations).toHaveLength(2);
    expect(c.phaseAt(45)).toBe('after');
    expect(c.phaseAt(55)).toBe('during');
  });
});

describe('guest workload strings', () => {
  it('builds each kind with /init items for swap and tracing', () => {
    expect(guestWorkloadString(vmWith({ kind: 'cpu', util: '50%', threads: 2 }).workload)).toBe('cpu:util=50,slice=10ms,threads=2');
    expect(guestWorkloadString(vmWith({ kind: 'stress', vm: 1000, vm_bytes: '10KiB' }).workload)).toBe(
      'stress:vm=1000,vm_bytes=10K,vm_stride=4096',
    );
    expect(guestWorkloadString(vmWith({ kind: 'stress', vm: 2, vm_bytes: '1MiB', vm_hang: '1s', vm_keep: true }).workload)).toBe(
      'stress:vm=2,vm_bytes=1M,vm_stride=4096,vm_hang=1000ms,vm_keep',
    );
    expect(guestWorkloadString(vmWith({ kind: 'mempressure', percent: '85%' }).workload)).toBe('mempressure:percent=85,rate=2000,swap=64M');
    const d = vmWith({
      kind: 'dirty',
      wset: '32MiB',
      bpc: 2,
      hot: '16MiB',
      hot_period: '1s',
      warmup: '2s',
      trace: { windows: ['30ms', '1s'], reps: 3 },
    }).workload;
    expect(guestWorkloadString(d)).toBe(
      'dirty:wset=32M,period=10ms,bpc=2,fill=100,hot=16M,hotperiod=1000ms,trace=30ms:1000ms,trace_reps=3,trace_delay=2000ms',
    );
    expect(workloadWarmupMs(d)).toBe(2000);
    expect(guestWorkloadString(vmWith({ kind: 'idle' }).workload)).toBeUndefined();
  });
  it('labels workloads with their parameters', () => {
    expect(guestWorkloadLabel(vmWith({ kind: 'cpu', util: '50%' }).workload)).toBe('cpu util=50%');
    expect(guestWorkloadLabel(vmWith({ kind: 'mempressure', percent: '91%' }).workload)).toBe(
      'mempressure percent=91% rate=2000 swap=64MiB',
    );
  });
  it('rejects bad parameters with the field named', () => {
    expect(() => vmWith({ kind: 'cpu', util: '150%' })).toThrow();
    expect(() => vmWith({ kind: 'stress', vm: 0, vm_bytes: '10KiB' })).toThrow();
    expect(() => vmWith({ kind: 'burn' })).toThrow(/kind 'dirty', 'cpu'/);
    // bounds are the schema's, so a bad value fails at validation, not at guest boot
    expect(() => vmWith({ kind: 'mempressure', percent: '100%' })).toThrow(/expected 1% to 99%, got '100%'/);
    expect(() => vmWith({ kind: 'cpu', util: '0%' })).toThrow(/expected 1% to 100%, got '0%'/);
    expect(() => vmWith({ kind: 'idle' }, [{ kind: 'probe', op: 'rm -rf' }])).toThrow(/expected op/);
    expect(() => vmWith({ kind: 'idle' }, [{ kind: 'httperf', rate: 100, uri: 'x;y' }])).toThrow(/URI path/);
  });
});

describe('guest console reports', () => {
  it('parses trace lines into dirty_trace samples analysis reads', () => {
    const line = '[  5.1] MB-TRACE pid=101 rep=0 target_s=1.0000 window_s=1.0005 dirtied_pages=4305 dirtied_mib=16.816 procs=1';
    expect(parseTraceLine(line)).toMatchObject({ windowS: 1.0005, dirtiedPages: 4305, procs: 1 });
    const s = reportSample(line, { vm: 'v', workload: 'w' }, 0)!;
    expect(s.measurement).toBe('dirty_trace');
    expect(s.tags).toEqual({ vm: 'v', workload: 'w' });
    expect(s.fields.window_s).toBe(1.0005);
    expect(s.fields.dirtied_mib).toBeCloseTo((4305 * 4096) / 2 ** 20, 6);
    expect(parseTraceLine('MB-TRACE-DONE windows=6')).toBeNull();
  });
  it('turns workload reports into workload_report samples and recognises heartbeats', () => {
    const l = 'MB-MEMPRESSURE up=3.0 held_kib=90000 rss_kib=60000 swap_kib=30000 swap_used_kib=31000 pswpin_s=10 pswpout_s=500 swapping=1';
    expect(parseGuestReport(l)!.kind).toBe('mempressure');
    const s = reportSample(l, { vm: 'v' }, 0)!;
    expect(s).toMatchObject({
      measurement: 'workload_report',
      tags: { vm: 'v', kind: 'mempressure' },
      fields: { swapping: 1, pswpout_s: 500 },
    });
    for (const k of ['MB-DIRTY up=1', 'MB-CPU up=1', 'MB-STRESS up=1', 'MB-MEMPRESSURE up=1'])
      expect(WORKLOAD_HEARTBEAT.test(k)).toBe(true);
    expect(WORKLOAD_HEARTBEAT.test('MB-DIRTY-START pid=1')).toBe(false);
    expect(reportSample('MB-DIRTY up=1 pages_s=1 mib_s=1 target_pages_s=1', {}, 0)).toBeNull(); // the runner's dirty_rate owns it
  });
});

describe('httperf', () => {
  const out = `Total: connections 100 requests 100 replies 98 test-duration 1.012 s
Connection rate: 98.8 conn/s (10.1 ms/conn, <=3 concurrent connections)
Connection time [ms]: min 1.1 avg 3.5 max 40.2 median 2.5 stddev 4.0
Request rate: 98.8 req/s (10.1 ms/req)
Reply time [ms]: response 3.1 transfer 0.0
Reply status: 1xx=0 2xx=98 3xx=0 4xx=0 5xx=0
Errors: total 2 client-timo 2 socket-timo 0 connrefused 0 connreset 0
Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0`;
  it('parses the summary', () => {
    expect(parseHttperf(out)).toMatchObject({
      connections: 100,
      replies: 98,
      status2xx: 98,
      errors: 2,
      clientTimeouts: 2,
      responseMs: 3.1,
      connMsAvg: 3.5,
      connMsMax: 40.2,
    });
    expect(parseHttperf(out)!.replyRate).toBeCloseTo(98 / 1.012, 6);
    expect(parseHttperf('httperf: connection refused')).toBeNull();
  });
  it('builds arguments for a window', () => {
    expect(httperfArgs({ server: '10.0.0.1', uri: '/index.html', rate: 100, numConns: 100, timeoutS: 2 })).toEqual([
      '--server',
      '10.0.0.1',
      '--port',
      '80',
      '--uri',
      '/index.html',
      '--rate',
      '100',
      '--num-conns',
      '100',
      '--num-calls',
      '1',
      '--timeout',
      '2',
      '--hog',
    ]);
  });
  it('maps clients to ids and paths', () => {
    expect(opPath('page')).toBe('/index.html');
    expect(opPath('write20m')).toBe('/cgi-bin/op?write20m');
    expect(clientId(ClientSpec.parse({ kind: 'httperf', rate: 200, uri: '/' }))).toBe('httperf-200');
  });
});

describe('calc-dirty-rate support', () => {
  const schema = [
    { name: 'calc-dirty-rate', 'meta-type': 'command', 'arg-type': 'A' },
    { name: 'A', 'meta-type': 'object', members: [{ name: 'calc-time' }, { name: 'calc-time-unit' }, { name: 'mode', type: 'M' }] },
    { name: 'M', 'meta-type': 'enum', values: ['page-sampling', 'dirty-ring', 'dirty-bitmap'] },
  ];
  it('never offers modes that crash or misread on the accelerator', () => {
    expect(dirtyRateSupportFrom(schema, { major: 10, minor: 0 }, 'tcg')).toMatchObject({
      available: true,
      millisecond: true,
      modes: ['page-sampling'],
    });
    expect(dirtyRateSupportFrom(schema, { major: 10, minor: 0 }, 'kvm').modes).toEqual(['dirty-bitmap', 'page-sampling']);
    expect(dirtyRateSupportFrom(schema, { major: 10, minor: 0 }, 'kvm', true).modes).toEqual([
      'dirty-bitmap',
      'page-sampling',
      'dirty-ring',
    ]);
    expect(dirtyRateSupportFrom([], { major: 7, minor: 2 }, 'tcg').available).toBe(false);
    expect(
      dirtyRateSupportFrom([schema[0], { ...schema[1], members: [{ name: 'calc-time' }] }], { major: 7, minor: 2 }, 'tcg').millisecond,
    ).toBe(false);
  });
});
