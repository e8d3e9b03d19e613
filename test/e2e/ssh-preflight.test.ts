/**
 * Parallel connection and preflight against real sshd instances on 127.0.0.1
 * (the "servers" are this machine, so the clock offset must be ~0).
 */
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshPool } from '../../harness/ssh/pool.ts';
import { runPreflight, type PreflightHost } from '../../harness/ssh/preflight.ts';
import type { SshTarget } from '../../harness/ssh/types.ts';
import { UserError } from '../../harness/util/errors.ts';
import { freeTcpPort } from '../support/influxd.ts';
import { makeKey, startSshd, type TestSshd } from '../support/sshd.ts';

const N = 8;
let dir: string;
let key: string;
let servers: TestSshd[] = [];
let knownHosts: string;
const pools: SshPool[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mb-p-sshp-'));
  const k = makeKey(dir, 'client');
  key = k.priv;
  // s1 runs root's shell rc files as a real server would; the others skip them (speed: ~0.5 s per command here)
  servers = await Promise.all(Array.from({ length: N }, (_, i) => startSshd({ authorizedKeys: [k.pub], skipShellRc: i > 0 })));
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, servers.map((s) => s.knownHostsLine).join('\n') + '\n');
});

afterAll(async () => {
  for (const p of pools) p.closeAll();
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = (i: number, extra: Partial<SshTarget> = {}): SshTarget => ({
  name: `s${i + 1}`,
  host: '127.0.0.1',
  port: servers[i].port,
  user: 'root',
  keyFile: key,
  ...extra,
});
function pool(): SshPool {
  const p = new SshPool({ hostKeys: { mode: 'strict', knownHostsFiles: [knownHosts], ownKnownHosts: join(dir, 'own') } });
  pools.push(p);
  return p;
}
async function userErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('ssh pool and preflight (real sshd on loopback)', () => {
  it(`connects to ${N} servers in parallel`, async () => {
    const p = pool();
    const t0 = performance.now();
    const times = await p.connectAll(servers.map((_, i) => target(i)));
    const wall = performance.now() - t0;
    const sum = [...times.values()].reduce((a, b) => a + b, 0);
    console.log(
      `parallel connect to ${N} sshd: ${wall.toFixed(0)} ms wall, per host ${[...times.values()].map((t) => t.toFixed(0)).join('/')} ms`,
    );
    expect(times.size).toBe(N);
    // the handshakes overlapped: their summed durations exceed the wall time by far
    expect(sum).toBeGreaterThan(wall * 2);
  });

  it('lists every unreachable host in one message and probes nothing', async () => {
    const closed = await freeTcpPort();
    const hosts: PreflightHost[] = [
      { name: 's1', ssh: target(0), hypervisor: 'qemu' },
      { name: 'gone', ssh: target(0, { name: 'gone', port: closed }), hypervisor: 'qemu' },
      { name: 'gone2', ssh: target(0, { name: 'gone2', port: closed }), hypervisor: 'qemu' },
    ];
    const msg = await userErrorOf(runPreflight(pool(), hosts));
    expect(msg).toBe(
      'cannot connect to 2 of 3 hosts:\n' +
        `  gone (root@127.0.0.1:${closed}): connection refused; check that sshd runs there and the port (${closed})\n` +
        `  gone2 (root@127.0.0.1:${closed}): connection refused; check that sshd runs there and the port (${closed})`,
    );
  });

  it('finds QEMU >= 9 and a clock offset within its uncertainty, directly and through a gateway', async () => {
    const hosts: PreflightHost[] = [
      { name: 's1', ssh: target(0), hypervisor: 'qemu' },
      { name: 's2', ssh: target(1, { jump: target(2, { name: 'gw' }) }), hypervisor: 'qemu' },
    ];
    const r = await runPreflight(pool(), hosts, { htb: true });
    let kvmHere = true;
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      kvmHere = false;
    }
    for (const h of r.hosts) {
      expect(h.facts.qemu?.version?.major).toBeGreaterThanOrEqual(9);
      expect(h.accel).toBe(kvmHere ? 'kvm' : 'tcg');
      expect(h.facts.qdiscs?.available.htb).toBe(true);
      expect(h.facts.memory?.availableBytes).toBeGreaterThan(0);
      const c = h.clock!;
      console.log(
        `${h.name}: clock offset ${c.offsetMs.toFixed(3)} ± ${c.uncertaintyMs.toFixed(3)} ms (median RTT ${c.medianRttMs.toFixed(3)} ms), probes ${h.probeMs.toFixed(0)} ms`,
      );
      // same machine, same clock: the true offset is 0, so the estimate must be within its bound (+ µs rounding)
      expect(Math.abs(c.offsetMs)).toBeLessThanOrEqual(c.uncertaintyMs + 0.01);
      expect(c.uncertaintyMs).toBeLessThan(50);
      expect(c.samples).toBe(16);
    }
    console.log(`preflight of 2 hosts: ${r.totalMs.toFixed(0)} ms (connect ${r.connectMs.toFixed(0)} ms)`);
    expect(r.warnings).toEqual([]);
  });

  it('fails with one message naming host and check', async () => {
    const msg = await userErrorOf(
      runPreflight(pool(), [{ name: 's4', ssh: target(3), hypervisor: 'qemu' }], { minAvailableBytes: 2 ** 60 }),
    );
    expect(msg).toMatch(
      new RegExp(
        `^preflight failed: host s4 \\(root@127\\.0\\.0\\.1:${servers[3].port}\\): memory: [\\d.]+ GiB available, 1073741824\\.0 GiB needed`,
      ),
    );
  });
});
