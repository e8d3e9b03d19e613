import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../harness/store/sample.ts';
import { startSimBmc, type SimBmc } from '../../harness/power/sim-bmc.ts';
import { HostPowerModel } from '../../harness/power/host-power.ts';
import { PowerPoller, type PowerSource } from '../../harness/power/poller.ts';
import { chassisPower } from '../../harness/power/chassis.ts';
import { excessEnergy, powerPoints } from '../../harness/power/energy.ts';
import { cpuTicksFromStat } from '../../harness/power/power-model.ts';

const creds = { user: 'mbadmin', password: 'mb-p-s3cret' };
const dir = mkdtempSync('/tmp/mb-p-power-');
const basePort = 20000 + Math.floor(Math.random() * 20000);
const hosts = ['h1', 'h2', 'h3'];
const bmcs: SimBmc[] = [];
const models: HostPowerModel[] = [];
const children: ChildProcess[] = [];
let busyPid: number | null = null;

function source(host: string, i: number, password = creds.password, port = basePort + i): PowerSource {
  return { host, address: '127.0.0.1', port, credentials: { user: creds.user, password }, reading: { kind: 'sensor', name: 'Power' } };
}

function cpuSeconds(pid: number): number {
  return cpuTicksFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) / 100;
}

/** Resolves when `pred` holds for a sample, or rejects after `ms`. */
function waitFor(samples: Sample[], pred: (s: Sample) => boolean, ms: number): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const iv = setInterval(() => {
      const s = samples.find(pred);
      if (s) {
        clearInterval(iv);
        resolve(s);
      } else if (Date.now() > end) {
        clearInterval(iv);
        reject(new Error('condition not reached'));
      }
    }, 50);
  });
}

beforeAll(async () => {
  for (const [i, host] of hosts.entries()) {
    const bmc = await startSimBmc({ host, address: '127.0.0.1', port: basePort + i, credentials: creds, dir: `${dir}/${host}` });
    bmcs.push(bmc);
    const model = new HostPowerModel(
      bmc,
      { qemuPids: () => (host === 'h2' && busyPid !== null ? [busyPid] : []) },
      host === 'h3' ? { shutdownMs: 2000, bootMs: 3000 } : {},
    );
    await model.start();
    models.push(model);
  }
});

afterAll(async () => {
  for (const m of models) m.stop();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const b of bmcs) await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('power via IPMI against local ipmi_sim BMCs', () => {
  it('polls 3 BMCs at 1 Hz for ~20 s; a busy host draws more, energy matches its CPU time', async () => {
    const samples: Sample[] = [];
    const logs: string[] = [];
    const poller = new PowerPoller(
      hosts.map((h, i) => source(h, i)),
      { onSample: (s) => samples.push(s), log: (m) => logs.push(m) },
    );
    await poller.start();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 7000));
    const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    children.push(busy);
    busyPid = busy.pid!;
    const busyFrom = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    const busyCpu = cpuSeconds(busy.pid!);
    busy.kill('SIGKILL');
    const busyTo = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    const report = await poller.stop();
    const elapsed = (Date.now() - t0) / 1000;

    // 1 Hz, each host: nearly every tick is a reading (allow a few gaps on a noisy 2-core box).
    for (const h of hosts) {
      const mine = samples.filter((s) => s.tags.host === h);
      const ok = mine.filter((s) => typeof s.fields.watts === 'number');
      expect(mine.length).toBeGreaterThanOrEqual(Math.floor(elapsed) - 2);
      expect(mine.length).toBeLessThanOrEqual(Math.ceil(elapsed) + 1);
      expect(ok.length).toBeGreaterThanOrEqual(mine.length - 3);
      for (const s of ok) expect(s.fields.latency_ms as number).toBeLessThan(800);
    }
    expect(report.jitter.count).toBeGreaterThan(40);
    expect(Math.abs(report.jitter.p50Ms - 1000)).toBeLessThan(50);
    expect(report.jitter.meanMs).toBeGreaterThan(950);
    expect(report.jitter.meanMs).toBeLessThan(1050);
    console.log('poller report', JSON.stringify(report));

    // Idle hosts stay at the idle figure (whole watts); the busy host goes up, then back down.
    for (const h of ['h1', 'h3']) {
      for (const s of samples.filter((x) => x.tags.host === h && x.fields.watts !== null)) expect(s.fields.watts).toBe(110);
    }
    const h2 = powerPoints(samples, 'h2');
    const before = h2.filter((p) => p.tMs < busyFrom && p.watts !== null);
    const during = h2.filter((p) => p.tMs > busyFrom + 2500 && p.tMs < busyTo && p.watts !== null);
    const after = h2.filter((p) => p.tMs > busyTo + 2500 && p.watts !== null);
    expect(before.every((p) => p.watts === 110)).toBe(true);
    expect(during.length).toBeGreaterThan(3);
    const meanDuring = during.reduce((a, p) => a + p.watts!, 0) / during.length;
    expect(meanDuring).toBeGreaterThan(115); // >= ~0.3 core of 17.6 W even under heavy steal
    expect(meanDuring).toBeLessThanOrEqual(110 + 17.6 * 1 + 1); // one sh loop is at most one core
    expect(after.every((p) => p.watts === 110)).toBe(true);

    // Energy above idle over the busy period (+ model/sensor lag) = 17.6 J per CPU-second used.
    const e = excessEnergy(h2, 110, busyFrom - 1000, busyTo + 4000);
    const expected = 17.6 * busyCpu;
    console.log('energy', JSON.stringify(e), 'expected', expected.toFixed(1), 'busy cpu s', busyCpu.toFixed(2));
    expect(e.coveredFraction).toBeGreaterThan(0.8);
    expect(Math.abs(e.joules - expected)).toBeLessThan(0.25 * expected + 10);
  });

  it('wrong password and unreachable BMC: one message each, gaps recorded, good BMC keeps reading', async () => {
    const samples: Sample[] = [];
    const logs: string[] = [];
    const poller = new PowerPoller(
      [source('h1', 0), source('badpw', 1, 'wrong-password'), source('gone', 9, creds.password, basePort + 50)],
      { onSample: (s) => samples.push(s), log: (m) => logs.push(m), reconnectMinMs: 500, reconnectMaxMs: 1000 },
    );
    await poller.start();
    await waitFor(samples, () => samples.filter((s) => s.tags.host === 'h1').length >= 6, 20_000);
    await poller.stop();
    const of = (h: string) => samples.filter((s) => s.tags.host === h);
    expect(of('h1').filter((s) => s.fields.watts === 110).length).toBeGreaterThanOrEqual(5);
    expect(of('badpw').length).toBeGreaterThanOrEqual(5);
    expect(of('badpw').every((s) => s.fields.watts === null && s.fields.reason === 'wrong-password')).toBe(true);
    expect(of('gone').every((s) => s.fields.watts === null && s.fields.reason === 'unreachable')).toBe(true);
    expect(logs.filter((l) => l.includes('badpw')).length).toBe(1);
    expect(logs.filter((l) => l.includes('gone')).length).toBe(1);
    expect(logs.find((l) => l.includes('badpw'))).toMatch(/wrong BMC password/);
    expect(logs.find((l) => l.includes('gone'))).toMatch(/does not answer/);
    // The password never appears in what is recorded or logged.
    expect(JSON.stringify(samples) + logs.join('\n')).not.toContain(creds.password);
  });

  it('chassis power off/on through the BMC drives the modelled power (shutdown, standby, boot)', async () => {
    const ep = source('h3', 2);
    const samples: Sample[] = [];
    const poller = new PowerPoller([ep], { onSample: (s) => samples.push(s), intervalMs: 250 });
    await poller.start();
    expect(await chassisPower(ep, 'status')).toBe(true);
    const offAt = Date.now();
    await chassisPower(ep, 'off');
    expect(await chassisPower(ep, 'status')).toBe(false);
    const zero = await waitFor(samples, (s) => Date.parse(s.t) > offAt && s.fields.watts === 0, 15_000);
    // Idle power continues for the shutdown duration (2 s) before reaching standby.
    expect(Date.parse(zero.t) - offAt).toBeGreaterThan(1500);
    const onAt = Date.now();
    await chassisPower(ep, 'on');
    const boot = await waitFor(samples, (s) => Date.parse(s.t) > onAt && s.fields.watts === 130, 15_000);
    const idle = await waitFor(samples, (s) => Date.parse(s.t) > Date.parse(boot.t) && s.fields.watts === 110, 15_000);
    expect(Date.parse(idle.t) - onAt).toBeGreaterThan(2500); // boot duration 3 s at idle + 20 W
    await poller.stop();
  });
});
