import { execa, type Options, type ResultPromise } from 'execa';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { UserError } from './errors.ts';
import { endWithHarness } from './procs.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Debian package that provides a command, for "missing tool" messages. */
const PROVIDER: Record<string, string> = {
  ip: 'iproute2',
  tc: 'iproute2',
  bridge: 'iproute2',
  nft: 'nftables',
  iperf3: 'iperf3',
  ping: 'iputils-ping',
  ethtool: 'ethtool',
  gcc: 'gcc',
  'qemu-system-x86_64': 'qemu-system-x86 (from bookworm-backports)',
  ipmitool: 'ipmitool',
  ipmi_sim: 'openipmi',
  influxd: 'influxdb',
  sshd: 'openssh-server',
  busybox: 'busybox-static',
  cpio: 'cpio',
  httperf: 'httperf',
  stress: 'stress',
  chrt: 'util-linux',
};

function missingTool(cmd: string): UserError {
  const pkg = PROVIDER[cmd];
  return new UserError(`required program '${cmd}' was not found on PATH` + (pkg ? `; install it with: apt-get install ${pkg}` : ''));
}

/**
 * Runs a program with an argument array (never a shell string) and returns its
 * output. A non-zero exit throws an Error naming the command and its stderr,
 * unless `allowFail` is set.
 */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { allowFail?: boolean; input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  try {
    const r = await execa(cmd, args, {
      reject: false,
      input: opts.input,
      timeout: opts.timeoutMs,
      env: opts.env,
      stripFinalNewline: true,
    });
    if ((r as { code?: string }).code === 'ENOENT' || (r.failed && r.exitCode === undefined && /ENOENT/.test(String(r.message)))) {
      throw missingTool(cmd);
    }
    const res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
    if (r.timedOut) throw new Error(`${cmd} ${args.join(' ')}: timed out after ${opts.timeoutMs} ms`);
    if (res.exitCode !== 0 && !opts.allowFail) {
      throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.exitCode}): ${res.stderr.trim() || res.stdout.trim()}`);
    }
    return res;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw missingTool(cmd);
    throw e;
  }
}

/** Runs a program inside a network namespace (`ip netns exec`). */
export function runIn(ns: string, cmd: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/**
 * Starts a long-running program in its own process group (a terminal Ctrl-C reaches only the
 * harness, which stops it in order); the caller owns the process and must end it by PID. It is
 * also sent SIGTERM when the harness exits (endWithHarness): execa's own `cleanup` skips detached children.
 */
export function spawnProcess(cmd: string, args: readonly string[], opts: Options = {}): ResultPromise {
  const child = execa(cmd, args, { reject: false, ...opts, detached: true });
  endWithHarness(child, cmd);
  return child;
}

/**
 * Wraps a command so the kernel kills it when the harness dies, even by kill -9
 * (prctl PR_SET_PDEATHSIG through util-linux `setpriv`, which then execs the command: same PID).
 */
export function withPdeathsig(cmd: string, args: readonly string[]): [string, string[]] {
  return ['setpriv', ['--pdeathsig', 'KILL', cmd, ...args]];
}

/** node:child_process.spawn with the same process-group rule as spawnProcess. */
export function spawnChild(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { ...opts, detached: true });
  endWithHarness(child, cmd);
  return child;
}

/** True when `cmd` is on PATH. */
export async function haveCommand(cmd: string): Promise<boolean> {
  const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false });
  return r.exitCode === 0;
}
