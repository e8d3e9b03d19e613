/**
 * mb-delayfwd and mb-probe on real namespaces:
 *
 *   mb-n1 [mb-n1a 10.213.7.1] <-veth-> [mb-n1b] mb-nsw [mb-n2b] <-veth-> [mb-n2a 10.213.7.2] mb-n2
 *                                        \____ mb-delayfwd ____/
 *
 * Needs root (namespaces, packet sockets, SCHED_FIFO).
 */
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runIn, spawnProcess } from '../../harness/util/exec.ts';
import {
  computeOutages,
  delayForwarderArgs,
  delayForwarderPath,
  longestOutage,
  parseProbeLine,
  probeArgs,
  probePath,
  type DelayForwarderOptions,
  type ProbeRecord,
} from '../../harness/native/programs.ts';

const NS = { left: 'mb-n1', right: 'mb-n2', sw: 'mb-nsw' } as const;
const LEFT_IP = '10.213.7.1';
const RIGHT_IP = '10.213.7.2';
const PIDFILE = '/tmp/mb-n-fwd.pid';
const isRoot = process.getuid?.() === 0;

type Proc = ReturnType<typeof spawnProcess>;
const started: Proc[] = []; // every process this file started, ended by PID in afterAll

let fwdBin = '';
let probeBin = '';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Resolves with the first line of `stream` matching `pred`; rejects after `ms` or when the stream ends. */
function waitForLine(stream: NodeJS.ReadableStream, pred: (l: string) => boolean, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: stream });
    const timer = setTimeout(() => done(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    const done = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      rl.removeAllListeners();
      if (err) reject(err);
      else resolve(line!);
    };
    rl.on('line', (l) => pred(l) && done(null, l));
    rl.on('close', () => done(new Error(`stream ended before ${what}`)));
  });
}

async function deleteNamespaces(): Promise<void> {
  for (const ns of Object.values(NS)) await run('ip', ['netns', 'del', ns], { allowFail: true });
}

async function buildTopology(): Promise<void> {
  await deleteNamespaces(); // leftovers of a crashed run of this file
  for (const ns of Object.values(NS)) await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', 'mb-n1a', 'netns', NS.left, 'type', 'veth', 'peer', 'name', 'mb-n1b', 'netns', NS.sw]);
  await run('ip', ['link', 'add', 'mb-n2a', 'netns', NS.right, 'type', 'veth', 'peer', 'name', 'mb-n2b', 'netns', NS.sw]);
  // no IPv6 chatter from the switch namespace's own stack
  await runIn(NS.sw, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  for (const [ns, dev, ip] of [
    [NS.left, 'mb-n1a', LEFT_IP],
    [NS.right, 'mb-n2a', RIGHT_IP],
  ] as const) {
    await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
    await run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  for (const dev of ['mb-n1b', 'mb-n2b']) await run('ip', ['-n', NS.sw, 'link', 'set', dev, 'up']);
}

interface Forwarder {
  proc: Proc;
  pid: number;
}

/** Starts mb-delayfwd in the switch namespace and waits for its "ready" line. */
async function startForwarder(delayMs: number, extra: Partial<DelayForwarderOptions> = {}): Promise<Forwarder> {
  const args = delayForwarderArgs({
    ifA: 'mb-n1b',
    ifB: 'mb-n2b',
    ab: { delayMs },
    ba: { delayMs },
    pidfile: PIDFILE,
    ...extra,
  });
  // `ip netns exec` execs the program, so this PID is the forwarder's
  const proc = spawnProcess('ip', ['netns', 'exec', NS.sw, fwdBin, ...args], { buffer: false });
  started.push(proc);
  await waitForLine(proc.stderr!, (l) => l.includes('"event":"ready"'), 30_000, 'mb-delayfwd ready');
  return { proc, pid: proc.pid! };
}

async function stopForwarder(f: Forwarder): Promise<void> {
  process.kill(f.pid, 'SIGTERM');
  const r = await f.proc;
  expect(r.exitCode).toBe(0);
  expect(existsSync(PIDFILE)).toBe(false);
}

/** ping RTTs in ms (first reply dropped: it may include ARP). */
async function pingRtts(count: number): Promise<number[]> {
  const r = await runIn(NS.left, 'ping', ['-n', '-c', String(count), '-i', '0.02', '-W', '2', RIGHT_IP], { allowFail: true });
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return rtts.slice(1);
}

/** Runs mb-probe to completion and returns its records. */
async function runProbe(durationMs: number, rt: boolean): Promise<ProbeRecord[]> {
  const r = await runIn(NS.left, probeBin, probeArgs({ target: RIGHT_IP, intervalMs: 10, durationMs, rt }), {
    timeoutMs: durationMs + 30_000,
  });
  return r.stdout
    .split('\n')
    .map(parseProbeLine)
    .filter((x): x is ProbeRecord => x !== null);
}

function probesPerSecond(recs: ProbeRecord[]): number {
  const s = recs.map((r) => r.sentUs).sort((a, b) => a - b);
  return ((s.length - 1) * 1e6) / (s[s.length - 1] - s[0]);
}

describe.skipIf(!isRoot)('native helpers on namespaces', () => {
  beforeAll(async () => {
    [fwdBin, probeBin] = await Promise.all([delayForwarderPath(), probePath()]);
    await buildTopology();
  });

  afterAll(async () => {
    for (const p of started) {
      if (p.pid !== undefined && p.exitCode === null) {
        try {
          process.kill(p.pid, 'SIGCONT'); // in case a test failed while it was stopped
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await p.catch(() => undefined);
    }
    await deleteNamespaces();
    await run('rm', ['-f', PIDFILE]);
  });

  it('reports a missing interface clearly', async () => {
    const r = await runIn(NS.sw, fwdBin, ['--a', 'mb-n1b', '--b', 'mb-nnope'], { allowFail: true });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/interface 'mb-nnope' not found/);
  });

  it('adds 2 x delay to the RTT (median within +-2 ms)', async () => {
    let f = await startForwarder(0);
    const base = median(await pingRtts(60));
    await stopForwarder(f);
    f = await startForwarder(25);
    const rtts = await pingRtts(60);
    await stopForwarder(f);
    const added = median(rtts) - base;
    console.log(`RTT median: base ${base.toFixed(3)} ms, with 25 ms each way ${median(rtts).toFixed(3)} ms, added ${added.toFixed(3)} ms`);
    expect(rtts.length).toBeGreaterThan(50);
    expect(Math.abs(added - 50)).toBeLessThanOrEqual(2);
    // and no reply may come back faster than the two delays
    expect(Math.min(...rtts)).toBeGreaterThanOrEqual(50);
  });

  it('carries a TCP bulk transfer (GSO frames, partial checksums) at > 50 Mbit/s', async () => {
    const f = await startForwarder(25);
    const server = spawnProcess('ip', ['netns', 'exec', NS.right, 'iperf3', '-s', '-1', '-B', RIGHT_IP, '-p', '5299']);
    started.push(server);
    try {
      // wait until the server listens
      const deadline = Date.now() + 30_000;
      while (!(await runIn(NS.right, 'ss', ['-Hltn', 'sport = :5299'])).stdout.includes('5299')) {
        if (Date.now() > deadline) throw new Error('iperf3 server did not start listening');
        await new Promise((r) => setTimeout(r, 50));
      }
      const c = await runIn(NS.left, 'iperf3', ['-c', RIGHT_IP, '-p', '5299', '-t', '4', '-J'], { timeoutMs: 60_000 });
      const mbps = JSON.parse(c.stdout).end.sum_received.bits_per_second / 1e6;
      console.log(`TCP through mb-delayfwd (25 ms each way, offloads on): ${mbps.toFixed(0)} Mbit/s`);
      expect(mbps).toBeGreaterThan(50);
    } finally {
      if (server.exitCode === null && server.pid) process.kill(server.pid, 'SIGTERM');
      await server;
      await stopForwarder(f);
    }
  });

  it('jitters within +-jitter without reordering, and drops at the --loss rate', async () => {
    let f = await startForwarder(20, { ab: { delayMs: 20, jitterMs: 5 }, ba: { delayMs: 20, jitterMs: 5 }, rt: true });
    const jittered = (await runProbe(3000, true)).sort((a, b) => a.seq - b.seq);
    await stopForwarder(f);
    const rtts = jittered.filter((r) => r.recvUs !== null).map((r) => (r.recvUs! - r.sentUs) / 1000);
    const sorted = [...rtts].sort((a, b) => a - b);
    const p10 = sorted[Math.floor(sorted.length * 0.1)];
    const p90 = sorted[Math.floor(sorted.length * 0.9)];
    console.log(
      `jitter 20+-5 ms each way: RTT min ${sorted[0].toFixed(2)} p10 ${p10.toFixed(2)} median ${median(rtts).toFixed(2)} p90 ${p90.toFixed(2)} ms`,
    );
    expect(rtts.length).toBeGreaterThan(280);
    expect(sorted[0]).toBeGreaterThanOrEqual(30); // 2 x (20 - 5)
    expect(Math.abs(median(rtts) - 40)).toBeLessThanOrEqual(3);
    expect(p90 - p10).toBeGreaterThan(3); // it really varies
    // never reordered: replies come back in the order the probes were sent
    const recv = jittered.filter((r) => r.recvUs !== null).map((r) => r.recvUs!);
    for (let i = 1; i < recv.length; i++) expect(recv[i]).toBeGreaterThanOrEqual(recv[i - 1]);

    f = await startForwarder(0, { ab: { delayMs: 0, loss: 0.1 } });
    const lossy = await runProbe(4000, true);
    await stopForwarder(f);
    const lostFrac = lossy.filter((r) => r.recvUs === null).length / lossy.length;
    console.log(`--loss-ab 10%: ${(lostFrac * 100).toFixed(1)}% of ${lossy.length} probes lost`);
    expect(lostFrac).toBeGreaterThan(0.05);
    expect(lostFrac).toBeLessThan(0.15);
  });

  it('mb-probe sends ~100 probes/s with --rt, and an outage of a stopped forwarder is measured', async () => {
    // --max-wait: frames that queued in the socket while the forwarder was stopped are dropped,
    // as on a real stalled link (else they would all be delivered late on SIGCONT)
    const f = await startForwarder(0, { maxWaitMs: 10, rt: true });
    try {
      const rt = await runProbe(3000, true);
      const plain = await runProbe(3000, false);
      const rtRate = probesPerSecond(rt);
      const plainRate = probesPerSecond(plain);
      console.log(
        `mb-probe 10 ms: --rt ${rtRate.toFixed(1)}/s (${rt.filter((r) => r.recvUs !== null).length}/${rt.length} answered), ` +
          `plain ${plainRate.toFixed(1)}/s (${plain.filter((r) => r.recvUs !== null).length}/${plain.length} answered)`,
      );
      // ~100/s: slots are only skipped when the whole VM loses its CPU (steal on this box)
      expect(rtRate).toBeGreaterThan(93);
      expect(rtRate).toBeLessThan(101);
      expect(rt.length).toBeGreaterThanOrEqual(280);
      expect(rt.filter((r) => r.recvUs !== null).length).toBeGreaterThanOrEqual(rt.length * 0.97);
      for (const r of rt) if (r.recvUs !== null) expect(r.recvUs).toBeGreaterThan(r.sentUs);

      // streaming probe; stop the forwarder for about a second in the middle
      const probe = spawnProcess('ip', ['netns', 'exec', NS.left, probeBin, ...probeArgs({ target: RIGHT_IP, intervalMs: 10, rt: true })], {
        buffer: false,
      });
      started.push(probe);
      const recs: ProbeRecord[] = [];
      let waiter: { n: number; resolve: () => void } | null = null;
      createInterface({ input: probe.stdout! }).on('line', (l) => {
        const r = parseProbeLine(l);
        if (r) recs.push(r);
        if (waiter && recs.filter((x) => x.recvUs !== null).length >= waiter.n) {
          waiter.resolve();
          waiter = null;
        }
      });
      const answered = (n: number): Promise<void> =>
        Promise.race([
          new Promise<void>((resolve) => {
            waiter = { n, resolve };
          }),
          new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`fewer than ${n} probe replies`)), 60_000)),
        ]);

      await answered(100);
      const t0 = process.hrtime.bigint();
      process.kill(f.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 1000)); // the stimulus: a ~1 s stall
      process.kill(f.pid, 'SIGCONT');
      const stoppedMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const before = recs.filter((x) => x.recvUs !== null).length;
      await answered(before + 100);
      process.kill(probe.pid!, 'SIGTERM');
      const pr = await probe;
      expect(pr.exitCode).toBe(0);

      const big = computeOutages(recs, 10, { minLost: 3 });
      const all = computeOutages(recs, 10);
      const longest = longestOutage(recs, 10)!;
      console.log(
        `stopped ${stoppedMs.toFixed(1)} ms; outage ${longest.durationMs.toFixed(1)} ms over ${longest.lostCount} probes; ` +
          `${all.length} outage(s) in ${recs.length} probes`,
      );
      expect(big).toHaveLength(1);
      expect(longest).toEqual(big[0]);
      expect(Math.abs(longest.durationMs - stoppedMs)).toBeLessThanOrEqual(30);
      // seqs are complete: every probe sent was reported exactly once
      const seqs = recs.map((r) => r.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    } finally {
      await stopForwarder(f);
    }
  });
});
