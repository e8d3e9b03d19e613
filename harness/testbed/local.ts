import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { UserError } from '../util/errors.ts';
import { run } from '../util/exec.ts';
import { stateDir } from '../util/paths.ts';
import { endProcess, isProcessAlive, ownProcess, pidExists, procStartTime } from '../util/procs.ts';
import { checkInterrupted, registerCleanup } from '../util/signals.ts';
import { failedStepIndex, formatStep, planUp, stepBatches, stepScript } from './plan.ts';
import type { KernelCaps, Step } from './shaping.ts';
import { listStates, loadState, namespacesClaimedByOthers, removeState, saveState, type TestbedState } from './state.ts';
import type { Topology } from './topology.ts';
import { checkServersFree, teardownServers, upServers } from './servers.ts';
import { within } from '../util/timers.ts';

/** The local driver: builds a topology out of namespaces, veths, bridges, tc. */

export async function listNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** Probes the kernel in a scratch device inside `ns` (netem is missing on some kernels). */
export async function detectCaps(ns: string): Promise<KernelCaps> {
  // a veth pair, not a dummy: some kernels are built without the dummy driver
  const dev = 'mb-capprobe';
  await run('ip', ['-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'mb-capprobe2']);
  const tryTc = async (...args: string[]) =>
    (await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', ...args], { allowFail: true })).exitCode === 0;
  const netem = await tryTc('netem', 'delay', '1ms');
  const htb = await tryTc('htb', 'default', '10');
  const nftNetdev =
    (
      await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
        allowFail: true,
        input: `table netdev mb_capprobe {\n chain c { type filter hook ingress device "${dev}" priority 0; }\n}\ndelete table netdev mb_capprobe\n`,
      })
    ).exitCode === 0;
  await run('ip', ['-n', ns, 'link', 'del', dev], { allowFail: true });
  return { netem, htb, nftNetdev };
}

/** The namespaces a topology is built from (what `up` creates, in that order). */
export function topologyNamespaces(topo: Topology): string[] {
  return [topo.switchNs, ...topo.hosts.map((h) => h.ns), ...(topo.clientNs ? [topo.clientNs] : [])];
}

/** Log file (in stateDir()) of one daemon of a testbed. */
function daemonLogName(id: string, tag: string): string {
  return `${id}-${tag.replace(/[^a-zA-Z0-9.-]/g, '_')}.log`;
}

async function runStep(step: Step, logDir: string, state: TestbedState): Promise<void> {
  const argv = step.ns ? ['ip', 'netns', 'exec', step.ns, ...step.argv] : step.argv;
  if (step.daemon) {
    const logName = daemonLogName(state.id, step.daemon.tag);
    // recorded before it exists, like namespaces: teardown removes exactly these files
    if (!(state.logs ??= []).includes(logName)) {
      state.logs.push(logName);
      saveState(state);
    }
    const log = openSync(join(logDir, logName), 'a');
    // detached: a daemon outlives this harness process; `down` ends it by PID
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    if (!child.pid) throw new Error(`could not start ${formatStep(step)}`);
    state.processes.push(ownProcess(child.pid, step.daemon.tag));
    saveState(state);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code ?? -1)));
    child.unref();
    // give it a moment to fail on bad arguments (missing interface, not root)
    const early = await within(exited, 300);
    if (early !== null) throw new Error(`${step.daemon.tag} exited at start (exit ${early}); see its log in ${logDir}`);
    return;
  }
  const r = await run(argv[0], argv.slice(1), { allowFail: true, input: step.input });
  if (r.exitCode !== 0) throw new Error(`step failed: ${formatStep(step)}\n  ${r.stderr.trim() || r.stdout.trim()}`);
}

/** Plain steps in one shell (plan.ts stepScript); a failure names the step, as runStep does. */
async function runScript(steps: readonly Step[]): Promise<void> {
  const r = await run('sh', ['-c', stepScript(steps)], { allowFail: true });
  if (r.exitCode === 0) return;
  const s = steps[failedStepIndex(r.stdout) ?? 0];
  throw new Error(`step failed: ${formatStep(s)}\n  ${r.stderr.trim()}`);
}

export interface UpOptions {
  id: string;
  specFile: string;
  topology: Topology;
  /** Resolves the forwarder binary only when some link needs it. */
  delayForwarder: () => Promise<string>;
  onProgress?: (done: number, total: number, what: string) => void;
  /** Run directory of the `migbench run` that owns this testbed. */
  ownerRun?: string;
  /** Also turn every host into an SSH server (servers.ts). */
  servers?: boolean;
}

/** Builds the testbed. On any failure or interrupt, everything created so far is removed. */
export async function up(opts: UpOptions): Promise<TestbedState> {
  if (process.getuid?.() !== 0) throw new UserError('the local testbed needs root (network namespaces, tc): run as root');
  const existing = loadState(opts.id);
  if (existing) {
    throw new UserError(
      `testbed '${opts.id}' is already ${existing.complete ? 'up' : 'half-built (an earlier up was interrupted)'} ` +
        `(created ${existing.createdAt} from ${existing.specFile}); run 'migbench testbed down ${opts.id}' first`,
    );
  }
  const topo = opts.topology;
  if (opts.servers) await checkServersFree(opts.id);
  // exactly the names this topology needs (a prefix match would also see testbed '<id>-x')
  const existingNs = new Set(await listNamespaces());
  const present = topologyNamespaces(topo).filter((n) => existingNs.has(n));
  if (present.length) {
    const owners = listStates()
      .filter((s) => s.id !== opts.id && s.namespaces?.some((n) => present.includes(n)))
      .map((s) => `'${s.id}'`);
    throw new UserError(
      owners.length
        ? `namespaces ${present.join(', ')} needed by testbed '${opts.id}' belong to testbed ${owners.join(', ')}; give this spec another testbed.id`
        : `namespaces of testbed '${opts.id}' already exist (${present.join(', ')}) without a state file; ` +
            `run 'migbench testbed down ${opts.specFile}' to remove exactly those`,
    );
  }
  const state: TestbedState = {
    id: opts.id,
    specFile: opts.specFile,
    createdAt: new Date().toISOString(),
    upPid: process.pid,
    upStartTime: procStartTime(process.pid) ?? undefined,
    complete: false,
    ownerRun: opts.ownerRun,
    namespaces: [],
    processes: [],
    logs: [],
    topology: topo,
    caps: null,
    mechanisms: {},
  };
  // registered before anything exists: a crash or signal mid-way removes what this up created
  let tornDown = false;
  const unregister = registerCleanup(async () => {
    if (!tornDown) await teardown(state);
  });
  saveState(state);
  const logDir = stateDir();
  mkdirSync(logDir, { recursive: true });
  try {
    // the switch namespace first: it is where the kernel is probed
    state.namespaces.push(topo.switchNs);
    saveState(state);
    await run('ip', ['netns', 'add', topo.switchNs]);
    state.caps = await detectCaps(topo.switchNs);
    if (!state.caps.htb) throw new UserError('this kernel has no htb qdisc; rate shaping is impossible here');
    const needsFwd = topo.links.some((l) => (l.constraint.delayMs || l.constraint.jitterMs) && !state.caps!.netem);
    const fwd = needsFwd ? await opts.delayForwarder() : 'mb-delayfwd';
    const plan = planUp(topo, state.caps, fwd);
    if (plan.steps.some((s) => s.input !== undefined) && !state.caps.nftNetdev && !state.caps.netem) {
      throw new UserError('loss shaping needs netem or nftables netdev ingress hooks; this kernel has neither');
    }
    state.mechanisms = plan.mechanisms;
    const steps = plan.steps.filter((s) => s.createsNs !== topo.switchNs);
    let done = 0;
    for (const batch of stepBatches(steps)) {
      checkInterrupted();
      const made = batch.flatMap((s) => (s.createsNs ? [s.createsNs] : []));
      if (made.length) {
        state.namespaces.push(...made);
        saveState(state);
      }
      done += batch.length;
      opts.onProgress?.(done, steps.length, formatStep(batch.at(-1)!));
      if (batch.length === 1) await runStep(batch[0], logDir, state);
      else await runScript(batch);
    }
    if (opts.servers) await upServers(state, saveState, opts.onProgress);
    state.complete = true;
    saveState(state);
    unregister(); // from here on the testbed is its owner's (a `run` registers its own cleanup)
    return state;
  } catch (e) {
    unregister();
    tornDown = true;
    await teardown(state);
    throw e;
  }
}

/**
 * Ends owned processes, then deletes namespaces (which removes their interfaces, qdiscs, nft tables).
 * Acts on exactly what `state` records, never on names that merely share its prefix: testbed
 * 'a' must not touch 'mb-a-b-sw' of testbed 'a-b'.
 */
export async function teardown(
  state: Pick<TestbedState, 'id' | 'namespaces' | 'processes' | 'logs' | 'servers'>,
): Promise<{ namespaces: string[]; processes: number }> {
  let ended = 0;
  for (const p of state.processes) if (await endProcess(p)) ended++;
  const existing = new Set(await listNamespaces());
  const removed = [...new Set(state.namespaces)].filter((ns) => existing.has(ns));
  // processes still inside our namespaces were started by us (QEMU, probes, forwarders); one `ip` per namespace, at once
  const pids = await Promise.all(removed.map((ns) => run('ip', ['netns', 'pids', ns], { allowFail: true })));
  for (const [i, r] of pids.entries()) {
    for (const pid of r.stdout
      .split('\n')
      .map(Number)
      .filter((n) => n > 0)) {
      if (await endProcess(ownProcess(pid, `in ${removed[i]}`))) ended++;
    }
  }
  // one process deletes them all; -force goes on past a namespace that vanished meanwhile
  if (removed.length)
    await run('ip', ['-force', '-batch', '-'], { allowFail: true, input: removed.map((ns) => `netns del ${ns}\n`).join('') });
  await teardownServers(state.servers);
  removeState(state.id);
  // old state files have no `logs`: their daemons' log names follow from the recorded tags
  const logs = state.logs ?? state.processes.map((p) => daemonLogName(state.id, p.tag));
  for (const f of logs) if (!f.includes('/')) rmSync(join(stateDir(), f), { force: true });
  // BMC files of a run killed before it could stop its BMCs (they hold that run's BMC password)
  rmSync(join(stateDir(), `${state.id}-bmc`), { recursive: true, force: true });
  return { namespaces: removed, processes: ended };
}

/** True while the process that ran `up` for this testbed lives (checked by PID and start time). */
export function ownerAlive(s: Pick<TestbedState, 'upPid' | 'upStartTime'>): boolean {
  if (s.upStartTime !== undefined && s.upStartTime >= 0) return isProcessAlive({ pid: s.upPid, startTime: s.upStartTime, tag: 'owner' });
  return pidExists(s.upPid); // state file of an older version: no start time recorded
}

/**
 * True while another live process owns this testbed: the `migbench run` that built it,
 * or an `up` still in progress. Pulling the network from under it would wreck its measurements.
 */
export function inUseByLiveRun(s: TestbedState): boolean {
  if (s.upPid === process.pid) return false;
  if (!s.ownerRun && s.complete) return false;
  return ownerAlive(s);
}

export interface DownResult {
  id: string;
  namespaces: string[];
  processes: number;
  /** Why nothing was removed (in use, or unowned namespaces that need --force). */
  refused?: string;
}

/**
 * Removes testbed `id` (or every recorded testbed). Without a state file for `id`, removes the
 * namespaces `topology` (the id's own spec) would produce and no other state file claims; with
 * only an id, namespaces carrying its prefix are removed only with `force` (they may belong to
 * a testbed '<id>-x' whose state file is gone too).
 */
export async function down(
  id?: string,
  opts: { force?: boolean; log?: (l: string) => void; topology?: Topology } = {},
): Promise<DownResult[]> {
  const states = id ? [loadState(id)].filter((s): s is TestbedState => s !== null) : listStates();
  const out: DownResult[] = [];
  for (const s of states) {
    if (!opts.force && inUseByLiveRun(s)) {
      const by = s.ownerRun ? `a running 'migbench run' (pid ${s.upPid}, ${s.ownerRun})` : `an 'up' still in progress (pid ${s.upPid})`;
      const refused = `testbed '${s.id}' is in use by ${by}; stop it first or pass --force`;
      opts.log?.(refused);
      out.push({ id: s.id, namespaces: [], processes: 0, refused });
      continue;
    }
    out.push({ id: s.id, ...(await teardown(s)) });
  }
  if (id && states.length === 0) {
    const claimed = namespacesClaimedByOthers(id);
    const existing = await listNamespaces();
    if (opts.topology) {
      const want = new Set(topologyNamespaces(opts.topology));
      const stray = existing.filter((n) => want.has(n) && !claimed.has(n));
      if (stray.length) out.push({ id, ...(await teardown({ id, namespaces: stray, processes: [], logs: [] })) });
    } else {
      const stray = existing.filter((n) => n.startsWith(`mb-${id}-`) && !claimed.has(n));
      if (stray.length && opts.force) {
        out.push({ id, ...(await teardown({ id, namespaces: stray, processes: [], logs: [] })) });
      } else if (stray.length) {
        const refused =
          `testbed '${id}' has no state file; namespaces ${stray.join(', ')} carry its prefix but may belong to another testbed ` +
          `(e.g. '${id}-...'); run 'migbench testbed down <spec.yaml>' to remove exactly that spec's namespaces, ` +
          `or 'migbench testbed down ${id} --force' to remove these`;
        opts.log?.(refused);
        out.push({ id, namespaces: [], processes: 0, refused });
      }
    }
  }
  return out;
}
