import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { loadSpec } from '../../harness/spec/load.ts';
import { concurrentRxRates, endpoint, GOODPUT_CEILING, median, pingRtts, tcpRate, udpLoss } from '../../harness/testbed/probe.ts';
import { statePath } from '../../harness/testbed/state.ts';
import { buildTopology } from '../../harness/testbed/topology.ts';
import { linksNamedMb, migbench, netnsList, ROOT, waitFor } from '../support/cli.ts';

/**
 * A real 2 racks x 2 hosts + client topology, measured with real traffic.
 * Spec: r1-h1 NIC 50 Mbit/s; 20 Mbit/s interlink (each rack uplink);
 * r1-h2 NIC 25 ms one-way delay each way (RTT +50 ms); r2-h2 NIC 5 % loss.
 */
const SPEC = `${ROOT}test/e2e/specs/shaping.yaml`;
const { spec } = loadSpec(SPEC);
const topo = buildTopology(spec.testbed, 'mbt');
const ep = (h: string) => endpoint(topo, h, 'data');

describe('local testbed with real shaping', () => {
  beforeAll(async () => {
    await migbench(['testbed', 'down', 'mbt']);
    const r = await migbench(['testbed', 'up', SPEC]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
  });
  afterAll(async () => {
    await migbench(['testbed', 'down', 'mbt']);
  });

  it('refuses a second up with a clear message and changes nothing', async () => {
    const before = await netnsList();
    const r = await migbench(['testbed', 'up', SPEC]);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/testbed 'mbt' is already up .* run 'migbench testbed down mbt' first/);
    expect(await netnsList()).toEqual(before);
  });

  it('a 50 Mbit/s host NIC is measured within 10 % of the goodput ceiling', async () => {
    const bps = await tcpRate(ep('r1-h2'), ep('r1-h1'), 5);
    expect(Math.abs(bps / (50e6 * GOODPUT_CEILING) - 1)).toBeLessThan(0.1);
  });

  it('a 20 Mbit/s interlink is measured within 10 % of the goodput ceiling', async () => {
    const bps = await tcpRate(ep('r2-h1'), ep('r1-h2'), 5);
    expect(Math.abs(bps / (20e6 * GOODPUT_CEILING) - 1)).toBeLessThan(0.1);
  });

  it('two flows crossing the interlink together share it', async () => {
    // the second flow enters rack r2 through the same 20 Mbit/s uplink; both are measured over one window in which both run
    const [a, b] = await concurrentRxRates(
      [
        [ep('r1-h1'), ep('r2-h1')],
        [ep('client'), ep('r2-h2')],
      ],
      8,
      1,
    );
    const ab = `a ${(a / 1e6).toFixed(2)} Mbit/s, b ${(b / 1e6).toFixed(2)} Mbit/s`;
    // Bounds from 40 runs here (20 with 2 busy loops; most with other CPU work at nice 19 too): total vs the goodput ceiling
    // mean -0.016, sd 0.004, range -0.025..-0.008; smaller flow's share mean 0.43, sd 0.06, min 0.27 (b ends on the
    // 5 % loss NIC, and TCP flows in one FIFO never split exactly). Each flow's own iperf3 average, used before, let a
    // flow run alone while the other started: the sum came out 16 % and 36 % off the link rate in two CI runs.
    expect((a + b) / (20e6 * GOODPUT_CEILING) - 1, ab).toBeGreaterThan(-0.06);
    expect((a + b) / (20e6 * GOODPUT_CEILING) - 1, ab).toBeLessThan(0.06);
    expect(Math.min(a, b) / (a + b), ab).toBeGreaterThan(0.15); // neither flow is starved
  });

  it('25 ms one-way delay each way shows as 50 ms RTT within 5 ms at the median', async () => {
    const rtts = await pingRtts(ep('r1-h1'), ep('r1-h2'), 40, 0.05);
    expect(rtts.length).toBeGreaterThanOrEqual(35);
    expect(Math.abs(median(rtts) - 50)).toBeLessThanOrEqual(5);
    // the unshaped neighbour pair is fast: the delay is where it was configured
    expect(median(await pingRtts(ep('r2-h1'), ep('client'), 10, 0.05))).toBeLessThan(5);
  });

  it('5 % loss shows as 3-7 % UDP loss', async () => {
    const { lossPct, packets } = await udpLoss(ep('r2-h1'), ep('r2-h2'), 5, 8e6);
    expect(packets).toBeGreaterThan(2000);
    expect(lossPct).toBeGreaterThanOrEqual(3);
    expect(lossPct).toBeLessThanOrEqual(7);
  });

  it('status lists the testbed with its shaping mechanisms', async () => {
    const r = await migbench(['testbed', 'status']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/testbed 'mbt' .*: up/);
    expect(String(r.stdout)).toMatch(/r1-h2 +delay 25 ms +delayfwd|r1-h2 +delay 25 ms +netem/);
  });

  it('down removes every namespace and interface named mb-', async () => {
    const r = await migbench(['testbed', 'down', 'mbt']);
    expect(r.exitCode).toBe(0);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbt-'))).toEqual([]);
    expect(await linksNamedMb()).toEqual([]);
    expect(existsSync(statePath('mbt'))).toBe(false);
  });
});

describe('crash safety', () => {
  it('after SIGKILL in the middle of up, down cleans everything', async () => {
    await migbench(['testbed', 'down', 'mbt']);
    const child = migbench(['testbed', 'up', SPEC]);
    // kill once the state file records at least two namespaces: up is mid-way
    await waitFor(
      () => {
        try {
          return (JSON.parse(readFileSync(statePath('mbt'), 'utf8')).namespaces as string[]).length >= 3;
        } catch {
          return false;
        }
      },
      60_000,
      'up to create namespaces',
    );
    child.kill('SIGKILL');
    await child;
    expect((await netnsList()).some((n) => n.startsWith('mb-mbt-'))).toBe(true);
    const r = await migbench(['testbed', 'down', 'mbt']);
    expect(r.exitCode).toBe(0);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbt-'))).toEqual([]);
    expect(await linksNamedMb()).toEqual([]);
  });

  it('Ctrl-C during up removes what was created', async () => {
    const child = migbench(['testbed', 'up', SPEC]);
    await waitFor(() => existsSync(statePath('mbt')), 60_000, 'up to start');
    child.kill('SIGINT');
    const r = await child;
    expect([0, 130]).toContain(r.exitCode); // 0 if up had already finished: then down below
    if (r.exitCode === 0) await migbench(['testbed', 'down', 'mbt']);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbt-'))).toEqual([]);
    expect(existsSync(statePath('mbt'))).toBe(false);
  });
});
