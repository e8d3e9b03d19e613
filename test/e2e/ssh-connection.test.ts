/**
 * SshConnection / SshPool against real sshd instances on 127.0.0.1 (root, own
 * host keys and authorized_keys in /tmp/mb-p-sshd-*). No testbed namespaces.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureClockOffset } from '../../harness/ssh/clock.ts';
import { SshError } from '../../harness/ssh/connection.ts';
import { SshPool } from '../../harness/ssh/pool.ts';
import type { HostKeyPolicy, SshTarget } from '../../harness/ssh/types.ts';
import { sleep } from '../../harness/util/time.ts';
import { freeTcpPort } from '../support/influxd.ts';
import { makeKey, startSshd, type TestSshd } from '../support/sshd.ts';
import { HOSTILE } from '../support/ssh-hostile.ts';

let dir: string;
let key: { priv: string; pub: string };
let a: TestSshd;
let gw: TestSshd;
let noisy: TestSshd;
let knownHosts: string;
const pools: SshPool[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mb-p-sshc-'));
  key = makeKey(dir, 'client');
  const noisyRc = join(dir, 'noisy-rc.sh');
  writeFileSync(noisyRc, 'echo "Welcome to a chatty server"; echo "rc warning" >&2\n');
  [a, gw, noisy] = await Promise.all([
    startSshd({ authorizedKeys: [key.pub], skipShellRc: true }),
    startSshd({ authorizedKeys: [key.pub], skipShellRc: true }),
    startSshd({ authorizedKeys: [key.pub], setEnv: { SHLVL: '1', BASH_ENV: noisyRc } }), // bash sources BASH_ENV for every command
  ]);
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${a.knownHostsLine}\n${gw.knownHostsLine}\n${noisy.knownHostsLine}\n`);
});

afterAll(async () => {
  for (const p of pools) p.closeAll();
  await Promise.all([a?.stop(), gw?.stop(), noisy?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = (s: TestSshd, extra: Partial<SshTarget> = {}): SshTarget => ({
  name: 'srv-a',
  host: '127.0.0.1',
  port: s.port,
  user: 'root',
  keyFile: key.priv,
  ...extra,
});
function pool(
  hostKeys: Partial<HostKeyPolicy> = {},
  opts: { connectTimeoutMs?: number; keepaliveIntervalMs?: number; keepaliveCountMax?: number } = {},
) {
  const p = new SshPool({
    hostKeys: { mode: 'strict', knownHostsFiles: [knownHosts], ownKnownHosts: join(dir, 'own-unused'), ...hostKeys },
    ...opts,
  });
  pools.push(p);
  return p;
}
async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SshError);
    return (e as Error).message;
  }
  throw new Error('expected an SshError');
}
/** Live processes whose argv is exactly this (the servers are this machine). */
function procsWithArgv(argv: string[]): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        return !st.slice(st.lastIndexOf(')') + 2).startsWith('Z') && readFileSync(`/proc/${d}/cmdline`, 'utf8') === argv.join('\0') + '\0';
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Sends `sig` to `pid`; false when that process is gone already (ESRCH). */
function signalIfThere(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

describe('ssh connection (real sshd on loopback)', () => {
  it('runs an argv with hostile arguments unchanged, and reports exit status, signal, stdin, env', async () => {
    const c = pool().connection(target(a));
    const r = await c.exec(['printf', '%s\\0', ...HOSTILE]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
    expect(existsSync('/tmp/mb-pwned-quote')).toBe(false);
    expect(await c.exec(['sh', '-c', 'echo oops >&2; exit 3'])).toEqual({ stdout: '', stderr: 'oops\n', code: 3, signal: null });
    expect((await c.exec(['sh', '-c', 'kill -9 $$'])).signal).toMatch(/KILL$/);
    expect((await c.exec(['cat'], { stdin: 'in\nput' })).stdout).toBe('in\nput');
    expect((await c.exec(['sh', '-c', 'printf %s "$MB_V"'], { env: { MB_V: "a'b $(x)" } })).stdout).toBe("a'b $(x)");
    expect(await errorOf(c.run(['false']))).toBe(`srv-a (root@127.0.0.1:${a.port}): 'false' failed (exit 1): `);
  });

  it('is not confused by shell start-up files that print', async () => {
    const c = pool().connection(target(noisy, { name: 'chatty' }));
    const r = await c.exec(['printf', '%s\\0', ...HOSTILE.slice(0, 8)]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE.slice(0, 8));
    expect(r.stderr).toBe('rc warning\n'); // stderr is the command's: rc noise there is kept, not parsed
    const clock = await measureClockOffset(c, { samples: 4 });
    expect(Math.abs(clock.offsetMs)).toBeLessThanOrEqual(clock.uncertaintyMs + 0.01);
  });

  it('refuses a wrong key with a message naming host, user and key', async () => {
    const wrong = makeKey(dir, 'wrong');
    const msg = await errorOf(
      pool()
        .connection(target(a, { keyFile: wrong.priv }))
        .connect(),
    );
    expect(msg).toBe(
      `srv-a (root@127.0.0.1:${a.port}): authentication failed for user 'root' with key ${wrong.priv}; ` +
        "check key_file/agent, user, and the server's authorized_keys",
    );
  });

  it('refuses an unknown host key under strict checking; accept-new records it', async () => {
    const own = join(dir, 'own', 'known_hosts');
    const strict = await errorOf(pool({ knownHostsFiles: [], ownKnownHosts: own }).connection(target(a)).connect());
    expect(strict).toMatch(
      new RegExp(
        `^srv-a \\(root@127\\.0\\.0\\.1:${a.port}\\): host key ssh-ed25519 SHA256:\\S+ is not in known_hosts \\(strict checking\\)`,
      ),
    );
    expect(strict).toContain('host_key_check: accept-new');
    expect(existsSync(own)).toBe(false);
    await pool({ mode: 'accept-new', knownHostsFiles: [], ownKnownHosts: own }).connection(target(a)).connect();
    expect(readFileSync(own, 'utf8')).toBe(`${a.knownHostsLine}\n`);
    // and now strict checking against that file succeeds
    await pool({ knownHostsFiles: [], ownKnownHosts: own }).connection(target(a)).connect();
  });

  it('refuses a changed host key loudly, even with accept-new', async () => {
    const other = makeKey(dir, 'other-host-key');
    const kh = join(dir, 'changed_known_hosts');
    writeFileSync(kh, `[127.0.0.1]:${a.port} ${other.pub.split(' ').slice(0, 2).join(' ')}\n`);
    for (const mode of ['strict', 'accept-new'] as const) {
      const msg = await errorOf(
        pool({ mode, knownHostsFiles: [kh], ownKnownHosts: join(dir, 'own2') })
          .connection(target(a))
          .connect(),
      );
      expect(msg).toMatch(
        /: HOST KEY CHANGED: the server presented ssh-ed25519 SHA256:\S+, which differs from the key recorded in .*changed_known_hosts:1\./,
      );
      expect(msg).toContain(`ssh-keygen -R '[127.0.0.1]:${a.port}'`);
    }
  });

  it('names the host when the port is closed or nothing answers, within the timeout', async () => {
    const closed = await freeTcpPort();
    const t0 = performance.now();
    expect(
      await errorOf(
        pool()
          .connection(target(a, { port: closed }))
          .connect(),
      ),
    ).toBe(`srv-a (root@127.0.0.1:${closed}): connection refused; check that sshd runs there and the port (${closed})`);
    // a listener that never speaks SSH: the handshake timeout applies
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const t1 = performance.now();
    const msg = await errorOf(pool({}, { connectTimeoutMs: 1000 }).connection(target(a, { port })).connect());
    const waited = performance.now() - t1;
    silent.close();
    expect(msg).toBe(`srv-a (root@127.0.0.1:${port}): no SSH answer within 1 s; check the address, port ${port}, firewalls`);
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(3000);
    expect(t1 - t0).toBeLessThan(1000);
  });

  it('reconnects once when the connection was killed', async () => {
    const c = pool().connection(target(a, { name: 'srv-kill' }));
    await c.exec(['true']);
    // the sshd processes serving our connection (one of an earlier test's may be ending by itself: ESRCH)
    const killed = a.sessionPids().filter((pid) => signalIfThere(pid, 'SIGKILL'));
    expect(killed.length).toBeGreaterThan(0);
    for (let i = 0; i < 100 && c.connected; i++) await sleep(10);
    expect((await c.exec(['echo', 'again'])).stdout).toBe('again\n');
    expect(c.reconnects).toBe(1);
  });

  it('notices a silent peer through keepalive, then reconnects', async () => {
    const c = pool({}, { keepaliveIntervalMs: 200, keepaliveCountMax: 2 }).connection(target(a, { name: 'srv-ka' }));
    await c.exec(['true']);
    // a session process may end by itself meanwhile (ESRCH): only the ones stopped here matter
    const stopped = a.sessionPids().filter((pid) => signalIfThere(pid, 'SIGSTOP'));
    try {
      const t0 = performance.now();
      while (c.connected && performance.now() - t0 < 5000) await sleep(20);
      expect(c.connected).toBe(false);
      expect(c.lastLoss).toMatch(/keepalive/i);
      expect((await c.exec(['echo', 'back'])).stdout).toBe('back\n');
    } finally {
      for (const pid of stopped) {
        signalIfThere(pid, 'SIGKILL');
        signalIfThere(pid, 'SIGCONT'); // sshd may have reaped it already
      }
    }
  });

  it('ends a timed-out command on the server, and stops streaming processes', async () => {
    const c = pool().connection(target(a));
    const t0 = performance.now();
    expect(await errorOf(c.exec(['sleep', '31.5'], { timeoutMs: 500 }))).toBe(
      `srv-a (root@127.0.0.1:${a.port}): 'sleep 31.5' did not finish within 0.5 s (ended it); check the server's load or raise the timeout`,
    );
    expect(performance.now() - t0).toBeLessThan(3000);
    for (let i = 0; i < 100 && procsWithArgv(['sleep', '31.5']).length; i++) await sleep(20);
    expect(procsWithArgv(['sleep', '31.5'])).toEqual([]);

    let out = '';
    const p = await c.spawn(['sh', '-c', 'sleep 37.25 & echo started; wait'], { onStdout: (s) => (out += s) });
    try {
      for (let i = 0; i < 200 && !(out.includes('started') && procsWithArgv(['sleep', '37.25']).length); i++) await sleep(20);
      expect(out).toBe('started\n');
      expect(procsWithArgv(['sleep', '37.25'])).toHaveLength(1); // a child of the command: the whole group is stopped
    } finally {
      const r = await p.stop();
      expect(r?.signal).toMatch(/TERM$/);
    }
    for (let i = 0; i < 100 && procsWithArgv(['sleep', '37.25']).length; i++) await sleep(20);
    expect(procsWithArgv(['sleep', '37.25'])).toEqual([]);
  });

  it('uploads a file once, then finds it by content hash', async () => {
    const c = pool().connection(target(a));
    const local = join(dir, 'guest.img');
    writeFileSync(local, Buffer.alloc(3 << 20, 7));
    const remoteDir = join(dir, 'remote', 'images');
    const first = await c.putByHash(local, remoteDir);
    expect(first.uploaded).toBe(true);
    expect(first.remotePath).toBe(`${remoteDir}/${first.sha256.slice(0, 32)}-guest.img`);
    expect(readFileSync(first.remotePath).equals(readFileSync(local))).toBe(true);
    const again = await c.putByHash(local, remoteDir);
    expect(again).toMatchObject({ uploaded: false, remotePath: first.remotePath });
    writeFileSync(local, Buffer.alloc(3 << 20, 8)); // new content: a new name
    const changed = await c.putByHash(local, remoteDir);
    expect(changed.uploaded).toBe(true);
    expect(changed.remotePath).not.toBe(first.remotePath);
    console.log(`sftp: 3 MiB uploaded in ${first.ms.toFixed(0)} ms, skipped in ${again.ms.toFixed(0)} ms`);
  });

  it('goes through a jump host', async () => {
    const p = pool();
    const viaGw = target(a, { name: 'srv-a-via-gw', jump: target(gw, { name: 'gw' }) });
    const c = p.connection(viaGw);
    expect((await c.exec(['printf', '%s', 'through $(the) gateway'])).stdout).toBe('through $(the) gateway');
    expect(p.get('gw').connected).toBe(true);
    const closed = await freeTcpPort();
    const msg = await errorOf(p.connection({ ...viaGw, name: 'nowhere', port: closed }).connect());
    expect(msg).toMatch(
      new RegExp(
        `^nowhere \\(root@127\\.0\\.0\\.1:${closed} via gw\\): gateway gw could not open a TCP connection to 127\\.0\\.0\\.1:${closed}`,
      ),
    );
    const badGw = await errorOf(
      pool()
        .connection({ ...viaGw, name: 'x', jump: target(gw, { name: 'gw2', port: closed }) })
        .connect(),
    );
    expect(badGw).toBe(
      `x (root@127.0.0.1:${a.port} via gw2): cannot reach it through gateway gw2: ` +
        `gw2 (root@127.0.0.1:${closed}): connection refused; check that sshd runs there and the port (${closed})`,
    );
  });
});
