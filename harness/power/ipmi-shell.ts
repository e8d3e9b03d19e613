import type { ChildProcess } from 'node:child_process';
import { run, spawnChild } from '../util/exec.ts';
import type { BmcCredentials } from './credentials.ts';
import { classifySessionFailure, type SessionFailure } from './ipmi-parse.ts';

/** Where a BMC answers IPMI over LAN. */
export interface BmcEndpoint {
  address: string;
  /** UDP port, default 623. */
  port?: number;
  credentials: BmcCredentials;
  /** RMCP+ cipher suite; ipmi_sim needs 3 (the default here). */
  cipherSuite?: number;
  /** Per-request timeout (ipmitool -N, s) and retries (-R); defaults 1 and 1 so a dead BMC costs ~2 s, not 15. */
  timeoutS?: number;
  retries?: number;
  /** Run ipmitool inside this network namespace (ip netns exec). */
  netns?: string;
}

const PROMPT = 'ipmitool> ';

/** ipmitool arguments for an endpoint; the password goes through IPMI_PASSWORD (-E), never argv. */
export function ipmitoolArgs(ep: BmcEndpoint, extra: readonly string[]): string[] {
  return [
    '-I',
    'lanplus',
    '-C',
    String(ep.cipherSuite ?? 3),
    '-N',
    String(ep.timeoutS ?? 1),
    '-R',
    String(ep.retries ?? 1),
    '-H',
    ep.address,
    '-p',
    String(ep.port ?? 623),
    '-U',
    ep.credentials.user,
    '-E',
    ...extra,
  ];
}

function withNetns(ep: BmcEndpoint, cmd: string, args: string[]): [string, string[]] {
  return ep.netns ? ['ip', ['netns', 'exec', ep.netns, cmd, ...args]] : [cmd, args];
}

/** Runs one ipmitool command as its own process (for chassis control and diagnosis, not for polling). */
export async function ipmitoolOnce(
  ep: BmcEndpoint,
  extra: readonly string[],
  timeoutMs = 15_000,
): Promise<{ ok: boolean; output: string }> {
  const [cmd, args] = withNetns(ep, 'ipmitool', ipmitoolArgs(ep, extra));
  const r = await run(cmd, args, { allowFail: true, timeoutMs, env: { ...envWithoutSecrets(), IPMI_PASSWORD: ep.credentials.password } });
  return { ok: r.exitCode === 0, output: `${r.stdout}\n${r.stderr}`.trim() };
}

/** Why a session cannot be opened, from one verbose attempt. */
export async function diagnoseSession(ep: BmcEndpoint): Promise<{ kind: SessionFailure; detail: string }> {
  const r = await ipmitoolOnce(ep, ['-v', 'chassis', 'power', 'status']);
  if (r.ok) return { kind: 'other', detail: 'session opens now' };
  const detail = r.output
    .split('\n')
    .filter((l) => l && !/IANA PEN/.test(l))
    .slice(0, 3)
    .join('; ');
  return { kind: classifySessionFailure(r.output), detail };
}

function envWithoutSecrets(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/PASSWORD/i.test(k)) out[k] = v;
  return out;
}

interface Pending {
  cmd: string;
  resolve: (text: string) => void;
  reject: (e: Error) => void;
}

/**
 * One long-lived `ipmitool ... shell` per BMC: commands are written to its
 * stdin and each answer is the text up to the next `ipmitool> ` prompt (stderr
 * is merged into stdout at the fd level so error lines stay in order). One
 * session serves every reading (~3 ms each instead of ~48 ms per process).
 * Answers complete commands strictly in order, so an answer that arrives after
 * its caller gave up is consumed and dropped, never given to a later command.
 */
export class IpmiShell {
  private proc: ChildProcess | null = null;
  private buf = '';
  private queue: Pending[] = [];
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private ready = false;
  private exitInfo: string | null = null;

  constructor(readonly endpoint: BmcEndpoint) {}

  /** Starts ipmitool and resolves once the session is open (first prompt), or rejects with its output. */
  start(): Promise<void> {
    if (this.proc) throw new Error('IpmiShell already started');
    const [cmd, args] = withNetns(this.endpoint, 'ipmitool', ipmitoolArgs(this.endpoint, ['shell']));
    // `exec "$@" 2>&1`: a fixed script, arguments passed separately (never interpolated).
    const p = spawnChild('sh', ['-c', 'exec "$@" 2>&1', 'sh', cmd, ...args], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...envWithoutSecrets(), IPMI_PASSWORD: this.endpoint.credentials.password },
    });
    this.proc = p;
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => this.onData(d));
    p.stdin!.on('error', () => {}); // EPIPE after exit is reported through 'exit'
    p.on('exit', (code, signal) => this.onExit(code, signal));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get alive(): boolean {
    return this.proc !== null && this.exitInfo === null;
  }

  /** Commands written and not yet answered (including ones the caller timed out on). */
  get inFlight(): number {
    return this.queue.length;
  }

  /** Sends one shell command; resolves with its answer text. */
  command(cmd: string): Promise<string> {
    if (!this.alive || !this.ready)
      return Promise.reject(new Error(`ipmitool shell not running${this.exitInfo ? `: ${this.exitInfo}` : ''}`));
    if (/[\n\r]/.test(cmd)) return Promise.reject(new Error('IPMI command must be one line'));
    return new Promise((resolve, reject) => {
      this.queue.push({ cmd, resolve, reject });
      this.proc!.stdin!.write(cmd + '\n');
    });
  }

  /** Ends the shell (by its PID) and waits for it to exit. */
  async close(): Promise<void> {
    const p = this.proc;
    if (!p || this.exitInfo !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.stdin!.end('exit\n');
    const t = setTimeout(() => p.kill('SIGTERM'), 1000);
    await exited;
    clearTimeout(t);
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      const i = this.buf.indexOf(PROMPT);
      if (i < 0) break;
      const chunk = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + PROMPT.length);
      if (!this.ready) {
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w.resolve();
        continue;
      }
      const p = this.queue.shift();
      if (!p) continue;
      // Without a TTY ipmitool echoes the command line before its answer.
      const lines = chunk.split('\n');
      if (lines[0].trim() === p.cmd.trim()) lines.shift();
      p.resolve(lines.join('\n').trim());
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const tail = this.buf.trim().split('\n').slice(-3).join('; ');
    this.exitInfo = `ipmitool exited (${signal ?? `code ${code}`})${tail ? `: ${tail}` : ''}`;
    const err = new Error(this.exitInfo);
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
    for (const p of this.queue.splice(0)) p.reject(err);
  }
}
