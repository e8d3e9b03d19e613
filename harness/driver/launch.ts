/**
 * Where probes and workload clients run: a vantage point that reaches the
 * guests' data addresses. Locally that is the client namespace (`ip netns exec
 * <ns> ...`, or the controller itself without a namespace); on a cluster it is
 * the inventory's client host, reached over SSH. Callers give an argv and get
 * streams, the exit, a way to signal and to stop; they never learn which.
 */
import type { ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { join } from 'node:path';
import { probePath } from '../native/programs.ts';
import type { SshConnection } from '../ssh/connection.ts';
import { describeTarget } from '../ssh/types.ts';
import { haveCommand, spawnChild } from '../util/exec.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import { endProcess, ownProcess } from '../util/procs.ts';
import { ensureRemoteProgram } from './ssh/programs.ts';

/** Harness programs a launcher can run on its host. */
export type HarnessProgram = 'mb-probe' | 'http-agent';

export interface LaunchOptions {
  /** Names the process in messages. */
  tag: string;
  /** Keep stdin open as a pipe (closed with endInput()); default: no input. */
  stdin?: boolean;
  /** Working directory (local launchers only; remote commands run in the login directory). */
  cwd?: string;
}

export interface LaunchExit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started or its connection was lost. */
  error?: string;
}

export interface LaunchedProcess {
  /** PID on this machine (its /proc entry is the program's), null for a remote process. */
  readonly pid: number | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles when the process has ended and its output was delivered; never rejects. */
  readonly done: Promise<LaunchExit>;
  /** Sends a signal to the process (SIGINT: httperf prints its summary). */
  signal(sig: 'SIGINT' | 'SIGTERM'): Promise<void>;
  /** Closes its stdin (a child reading it ends when its parent goes away). */
  endInput(): void;
  /** SIGTERM, SIGKILL after graceMs; resolves once it ended. */
  stop(graceMs?: number): Promise<void>;
}

export interface Launcher {
  /** For messages: `namespace mb-x-client`, `the controller`, `client (root@10.0.0.9:22)`. */
  readonly where: string;
  spawn(argv: readonly string[], opts: LaunchOptions): Promise<LaunchedProcess>;
  /** The argv prefix that runs a harness program there (compiled / uploaded as needed). */
  program(name: HarnessProgram): Promise<string[]>;
  /** True when `cmd` is on the PATH there. */
  haveCommand(cmd: string): Promise<boolean>;
}

const AGENT = join(PACKAGE_ROOT, 'harness', 'workloads', 'http-agent.ts');

/** Runs commands in a network namespace of this machine (`ip netns exec`), or directly when `ns` is null. */
export class LocalLauncher implements Launcher {
  readonly where: string;

  constructor(readonly ns: string | null) {
    this.where = ns ? `namespace ${ns}` : 'the controller';
  }

  haveCommand(cmd: string): Promise<boolean> {
    return haveCommand(cmd); // namespaces share this machine's file system
  }

  async program(name: HarnessProgram): Promise<string[]> {
    if (name === 'mb-probe') return [await probePath()];
    // run from the package root so `--import tsx` resolves
    return [process.execPath, '--import', 'tsx', AGENT];
  }

  async spawn(argv: readonly string[], opts: LaunchOptions): Promise<LaunchedProcess> {
    const [cmd, ...args] = this.ns ? ['ip', 'netns', 'exec', this.ns, ...argv] : argv;
    const child: ChildProcess = spawnChild(cmd, args, { cwd: opts.cwd, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    // `ip netns exec` execs the command: this PID is the program itself
    const owned = child.pid ? ownProcess(child.pid, opts.tag) : null;
    child.stdin?.on('error', () => {}); // EPIPE when it already ended
    const done = new Promise<LaunchExit>((resolve) => {
      child.once('error', (e) => resolve({ code: null, signal: null, error: e.message }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return {
      pid: child.pid ?? null,
      stdout: child.stdout!,
      stderr: child.stderr!,
      done,
      signal: async (sig) => {
        if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
        try {
          process.kill(child.pid, sig);
        } catch {
          /* gone */
        }
      },
      endInput: () => child.stdin?.end(),
      stop: async (graceMs = 3000) => {
        if (owned) await endProcess(owned, graceMs);
        await done;
      },
    };
  }
}

/**
 * Runs commands on a host over SSH (the inventory's client). The remote command leads its own
 * process group, so stop() and signal() reach it and its children.
 */
export class SshLauncher implements Launcher {
  readonly where: string;

  constructor(readonly conn: SshConnection) {
    this.where = describeTarget(conn.target);
  }

  async haveCommand(cmd: string): Promise<boolean> {
    const r = await this.conn.exec(['sh', '-c', 'command -v "$1"', 'sh', cmd], { label: `command -v ${cmd}`, timeoutMs: 30_000 });
    return r.code === 0;
  }

  async program(name: HarnessProgram): Promise<string[]> {
    const path = await ensureRemoteProgram(this.conn, name === 'mb-probe' ? 'mb-probe' : 'mb-http-agent');
    return name === 'mb-probe' ? [path] : ['node', path];
  }

  async spawn(argv: readonly string[], opts: LaunchOptions): Promise<LaunchedProcess> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const p = await this.conn.spawn(argv, {
      label: opts.tag,
      onStdout: (s) => stdout.write(s),
      onStderr: (s) => stderr.write(s),
    });
    const done: Promise<LaunchExit> = p.done.then(
      (r) => ({ code: r.code, signal: r.signal }),
      (e: unknown) => ({ code: null, signal: null, error: e instanceof Error ? e.message : String(e) }),
    );
    const ended = done.then((r) => {
      stdout.end();
      stderr.end();
      return r;
    });
    return {
      pid: null,
      stdout,
      stderr,
      done: ended,
      signal: async (sig) => {
        // to the whole remote group, over a fresh channel
        await this.conn
          .exec(['kill', '-s', sig.replace(/^SIG/, ''), '--', `-${p.pgid}`], { label: `kill ${opts.tag}` })
          .catch(() => undefined);
      },
      // the remote stdin of an ssh2 exec channel stays open until the channel closes; stop() ends the process
      endInput: () => undefined,
      stop: async (graceMs = 3000) => {
        await p.stop(graceMs).catch(() => null);
        await ended;
      },
    };
  }
}

export function localLauncher(ns: string | null): Launcher {
  return new LocalLauncher(ns);
}

export function sshLauncher(conn: SshConnection): Launcher {
  return new SshLauncher(conn);
}
