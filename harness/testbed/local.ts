import { closeSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { UserError } from '../util/errors.ts';
import { run } from '../util/exec.ts';
import { stateDir } from '../util/paths.ts';
import { endProcess, ownProcess } from '../util/procs.ts';
import { checkInterrupted } from '../util/signals.ts';
import { formatStep, planUp } from './plan.ts';
import type { KernelCaps, Step } from './shaping.ts';
import { listStates, loadState, removeState, saveState, type TestbedState } from './state.ts';
import type { Topology } from './topology.ts';

/** The local driver: builds a topology out of namespaces, veths, bridges, tc. */

export async function listNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
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
    (await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      allowFail: true,
      input: `table netdev mb_capprobe {\n chain c { type filter hook ingress device "${dev}" priority 0; }\n}\ndelete table netdev mb_capprobe\n`,
    })).exitCode === 0;
  await run('ip', ['-n', ns, 'link', 'del', dev], { allowFail: true });
  return { netem, htb, nftNetdev };
}

async function runStep(step: Step, logDir: string, state: TestbedState): Promise<void> {
  const argv = step.ns ? ['ip', 'netns', 'exec', step.ns, ...step.argv] : step.argv;
  if (step.daemon) {
    const log = openSync(join(logDir, `${state.id}-${step.daemon.tag.replace(/[^a-zA-Z0-9.-]/g, '_')}.log`), 'a');
    // detached: a daemon outlives this harness process; `down` ends it by PID
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    if (!child.pid) throw new Error(`could not start ${formatStep(step)}`);
    state.processes.push(ownProcess(child.pid, step.daemon.tag));
    saveState(state);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code ?? -1)));
    child.unref();
    // give it a moment to fail on bad arguments (missing interface, not root)
    const early = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 300))]);
    if (early !== null) throw new Error(`${step.daemon.tag} exited at start (exit ${early}); see its log in ${logDir}`);
    return;
  }
  const r = await run(argv[0], argv.slice(1), { allowFail: true, input: step.input });
  if (r.exitCode !== 0) throw new Error(`step failed: ${formatStep(step)}\n  ${r.stderr.trim() || r.stdout.trim()}`);
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
  const present = (await listNamespaces()).filter((n) => n.startsWith(`mb-${opts.id}-`));
  if (present.length) {
    throw new UserError(`namespaces of testbed '${opts.id}' already exist (${present.join(', ')}) without a state file; run 'migbench testbed down ${opts.id}' to remove them`);
  }
  const topo = opts.topology;
  const state: TestbedState = {
    id: opts.id, specFile: opts.specFile, createdAt: new Date().toISOString(), upPid: process.pid,
    complete: false, ownerRun: opts.ownerRun, namespaces: [], processes: [], topology: topo, caps: null, mechanisms: {},
  };
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
    for (let i = 0; i < steps.length; i++) {
      checkInterrupted();
      const s = steps[i];
      if (s.createsNs) {
        state.namespaces.push(s.createsNs);
        saveState(state);
      }
      opts.onProgress?.(i + 1, steps.length, formatStep(s));
      await runStep(s, logDir, state);
    }
    state.complete = true;
    saveState(state);
    return state;
  } catch (e) {
    await teardown(state);
    throw e;
  }
}

/** Ends owned processes, then deletes namespaces (which removes their interfaces, qdiscs, nft tables). */
export async function teardown(state: Pick<TestbedState, 'id' | 'namespaces' | 'processes'>): Promise<{ namespaces: string[]; processes: number }> {
  let ended = 0;
  for (const p of state.processes) if (await endProcess(p)) ended++;
  const existing = new Set(await listNamespaces());
  // also anything with this testbed's prefix, e.g. created in the instant before a kill -9 recorded it
  const ours = new Set([...state.namespaces, ...[...existing].filter((n) => n.startsWith(`mb-${state.id}-`))]);
  const removed: string[] = [];
  for (const ns of ours) {
    if (!existing.has(ns)) continue;
    // processes still inside our namespaces were started by us (QEMU, probes, forwarders)
    const pids = await run('ip', ['netns', 'pids', ns], { allowFail: true });
    for (const pid of pids.stdout.split('\n').map(Number).filter((n) => n > 0)) {
      if (await endProcess(ownProcess(pid, `in ${ns}`))) ended++;
    }
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    removed.push(ns);
  }
  removeState(state.id);
  for (const f of safeList(stateDir())) if (f.startsWith(`${state.id}-`) && f.endsWith('.log')) rmSync(join(stateDir(), f), { force: true });
  // BMC files of a run killed before it could stop its BMCs (they hold that run's BMC password)
  rmSync(join(stateDir(), `${state.id}-bmc`), { recursive: true, force: true });
  return { namespaces: removed, processes: ended };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** True while the `migbench run` that built this testbed is alive (and it is not us). */
export function inUseByLiveRun(s: TestbedState): boolean {
  if (!s.ownerRun || s.upPid === process.pid) return false;
  try {
    process.kill(s.upPid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function down(
  id?: string,
  opts: { force?: boolean; log?: (l: string) => void } = {},
): Promise<Array<{ id: string; namespaces: string[]; processes: number }>> {
  const states = id ? [loadState(id)].filter((s): s is TestbedState => s !== null) : listStates();
  const out: Array<{ id: string; namespaces: string[]; processes: number }> = [];
  for (const s of states) {
    if (!opts.force && inUseByLiveRun(s)) {
      // pulling the network from under a running campaign would wreck its measurements
      opts.log?.(`testbed '${s.id}' is in use by a running 'migbench run' (pid ${s.upPid}, ${s.ownerRun}); stop that run or pass --force`);
      continue;
    }
    out.push({ id: s.id, ...(await teardown(s)) });
  }
  if (id && states.length === 0) {
    // no state file (deleted by hand?): still remove namespaces carrying this id
    const stray = (await listNamespaces()).filter((n) => n.startsWith(`mb-${id}-`));
    if (stray.length) {
      out.push({ id, ...(await teardown({ id, namespaces: stray, processes: [] })) });
    }
  }
  return out;
}
