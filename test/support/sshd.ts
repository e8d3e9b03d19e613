import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freeTcpPort } from './influxd.ts';

/**
 * A private sshd on 127.0.0.1:<free port> for tests: own host key, own
 * authorized_keys, PidFile and config in /tmp/mb-p-sshd-*. Root logs in with
 * the generated client key. Ended by PID.
 */
export interface TestSshd {
  port: number;
  pid: number;
  dir: string;
  hostKeyPub: string;
  /** `[127.0.0.1]:port ssh-ed25519 AAAA...` for a known_hosts file. */
  knownHostsLine: string;
  /** PIDs of the per-connection sshd processes (children of the listener). */
  sessionPids(): number[];
  stop(): Promise<void>;
}

/** A key pair in `dir` (ssh-keygen, ed25519, no passphrase). */
export function makeKey(dir: string, name: string): { priv: string; pub: string } {
  const priv = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv]);
  return { priv, pub: readFileSync(`${priv}.pub`, 'utf8').trim() };
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function waitListening(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`sshd exited (${child.exitCode ?? child.signalCode}): ${log()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', () => (s.destroy(), r(true))); // the SSH banner: sshd accepts
      s.once('error', () => r(false));
      setTimeout(() => (s.destroy(), r(false)), 500);
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms: ${log()}`);
}

/** Starts sshd accepting the given authorized public keys. */
export async function startSshd(opts: {
  authorizedKeys: string[];
  dir?: string;
  hostKeyType?: 'ed25519' | 'ecdsa';
  skipShellRc?: boolean;
  setEnv?: Record<string, string>;
}): Promise<TestSshd> {
  const dir = opts.dir ?? mkdtempSync('/tmp/mb-p-sshd-');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege-separation directory sshd insists on
  const type = opts.hostKeyType ?? 'ed25519';
  const hostKey = join(dir, `host_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', hostKey]);
  const hostKeyPub = readFileSync(`${hostKey}.pub`, 'utf8').trim();
  writeFileSync(join(dir, 'authorized_keys'), opts.authorizedKeys.join('\n') + '\n', { mode: 0o600 });
  const port = await freeTcpPort();
  // bash skips ~/.bashrc under sshd when SHLVL says it is nested: a slow rc file (pyenv init: ~0.5 s here) would dominate each exec
  const setEnv = { ...(opts.skipShellRc ? { SHLVL: '1' } : {}), ...opts.setEnv };
  const conf = join(dir, 'sshd_config');
  writeFileSync(
    conf,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'MaxStartups 100:30:200',
      'MaxSessions 50',
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
      ...(Object.keys(setEnv).length
        ? [
            `SetEnv ${Object.entries(setEnv)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  let log = '';
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  await waitListening(port, child, () => log);
  const pid = child.pid!;
  return {
    port,
    pid,
    dir,
    hostKeyPub,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKeyPub.split(' ').slice(0, 2).join(' ')}`,
    sessionPids: () => childrenOf(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        // session processes are sshd's children; sshd -D does not end them on SIGTERM
        for (const s of childrenOf(pid)) {
          try {
            process.kill(s, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        child.kill('SIGTERM');
        await done;
      }
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
