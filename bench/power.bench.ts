// Power-path benchmark: polls 50 local ipmi_sim BMCs at 1 Hz for ~20 s and
// reports readings/s, jitter and CPU (this process + ipmitool + ipmi_sim
// children, from /proc); then measures InfluxDB ingest (points/s) into a
// private influxd. Run: node bin/run-ts.js bench/power.bench.ts [nBmcs] [seconds]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Sample } from '../harness/store/sample.ts';
import { startSimBmc, type SimBmc } from '../harness/power/sim-bmc.ts';
import { HostPowerModel } from '../harness/power/host-power.ts';
import { PowerPoller } from '../harness/power/poller.ts';
import { cpuTicksFromStat } from '../harness/power/power-model.ts';
import { InfluxSink } from '../harness/store/influx.ts';
import { startInfluxd } from '../test/support/influxd.ts';

const N = Number(process.argv[2] ?? 50);
const SECONDS = Number(process.argv[3] ?? 20);
const creds = { user: 'mbadmin', password: 'mb-p-bench' };
const dir = mkdtempSync('/tmp/mb-p-bench-');
const basePort = 40000 + Math.floor(Math.random() * 10000);

function cpuS(pid: number): number {
  try {
    return cpuTicksFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) / 100;
  } catch {
    return 0;
  }
}
const sum = (pids: number[]) => pids.reduce((a, p) => a + cpuS(p), 0);

const bmcs: SimBmc[] = [];
const models: HostPowerModel[] = [];
try {
  for (let i = 0; i < N; i++) {
    const bmc = await startSimBmc({ host: `b${i}`, address: '127.0.0.1', port: basePort + i, credentials: creds, dir: `${dir}/b${i}` });
    bmcs.push(bmc);
    const m = new HostPowerModel(bmc, { qemuPids: () => [] });
    await m.start();
    models.push(m);
  }
  const samples: Sample[] = [];
  const poller = new PowerPoller(
    bmcs.map((b) => ({
      host: b.spec.host,
      address: '127.0.0.1',
      port: b.spec.port,
      credentials: creds,
      reading: { kind: 'sensor' as const, name: 'Power' },
    })),
    { onSample: (s) => samples.push(s) },
  );
  await poller.start();
  const simPids = bmcs.map((b) => b.pid);
  const toolPids = poller.childPids();
  const c0 = process.cpuUsage();
  const sim0 = sum(simPids);
  const tool0 = sum(toolPids);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const wall = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const sim1 = sum(simPids) - sim0;
  const tool1 = sum(toolPids) - tool0;
  const report = await poller.stop();
  const nodeCpu = (c1.user + c1.system) / 1e6;
  console.log(`power poller: ${N} BMCs, ${wall.toFixed(1)} s`);
  console.log(
    `  readings ${report.readings} (${(report.readings / wall).toFixed(1)}/s, target ${N}/s), gaps ${report.gaps} ${JSON.stringify(report.gapsByReason)}`,
  );
  console.log(
    `  interval vs 1000 ms: mean ${report.jitter.meanMs.toFixed(2)} p50 ${report.jitter.p50Ms.toFixed(2)} p99 ${report.jitter.p99Ms.toFixed(2)} max|dev| ${report.jitter.maxAbsDevMs.toFixed(2)} ms`,
  );
  console.log(
    `  reply latency p50 ${report.latency.p50Ms.toFixed(2)} p99 ${report.latency.p99Ms.toFixed(2)} max ${report.latency.maxMs.toFixed(2)} ms`,
  );
  console.log(
    `  CPU (% of one core): node ${((100 * nodeCpu) / wall).toFixed(1)}% (poller + ${N} power models), ipmitool ${((100 * tool1) / wall).toFixed(1)}%, ipmi_sim ${((100 * sim1) / wall).toFixed(1)}%`,
  );
  console.log(`  CPU per reading: ${(((nodeCpu + tool1) * 1000) / Math.max(1, report.readings)).toFixed(2)} ms (node + ipmitool)`);
} finally {
  for (const m of models) m.stop();
  for (const b of bmcs) await b.stop();
  rmSync(dir, { recursive: true, force: true });
}

// InfluxDB ingest through the sink (batches of 5000, explicit timestamps).
const influxd = await startInfluxd();
const runDir = mkdtempSync('/tmp/mb-p-bench-run-');
try {
  const POINTS = 200_000;
  const sink = new InfluxSink(`${influxd.url}/mbp_bench`, { runDir, log: (m) => console.log(m) });
  const base = Date.now() - POINTS;
  const t0 = performance.now();
  for (let i = 0; i < POINTS; i++) {
    sink.write({
      t: new Date(base + Math.floor(i / 10)).toISOString().replace('Z', `${String(i % 10).padStart(3, '0')}Z`),
      measurement: 'power',
      tags: { host: `h${i % 10}`, experiment: 'bench' },
      fields: { watts: 110 + (i % 50), latency_ms: 2.5 },
    });
  }
  const st = await sink.close();
  const s = (performance.now() - t0) / 1000;
  console.log(
    `influx ingest: ${st.written} points in ${s.toFixed(2)} s = ${Math.round(st.written / s)} points/s (${st.batches} batches, ${st.bufferedToDisk} buffered to disk)`,
  );
} finally {
  await influxd.stop();
  rmSync(runDir, { recursive: true, force: true });
}
