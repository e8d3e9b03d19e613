import { spawn } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { reaperPath } from '../native/programs.ts';
import { bmcReadyPath, bmcSecretsPath, SERVER_BMC_USER } from './server-bmcs.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { UserError } from '../util/errors.ts';
import { run } from '../util/exec.ts';
import { PACKAGE_ROOT, stateDir } from '../util/paths.ts';
import { isProcessAlive, ownProcess, procStartTime } from '../util/procs.ts';
import { checkInterrupted } from '../util/signals.ts';
import { sleep } from '../util/time.ts';
import { CONTROLLER_IF, formatServerStep, planServers, SSH_PORT, type ServerStep, type ServersState } from './servers-plan.ts';
import { listStates, type TestbedState } from './state.ts';

/**
 * Applies the emulated-cluster plan (servers-plan.ts) and undoes it. Every
 * directory, the controller interface and every daemon is recorded in the
 * testbed state before (or as) it is created, so `testbed down` after kill -9
 * removes exactly that.
 */

export function serversDir(id: string): string {
  return join(stateDir(), `${id}-servers`);
}

/** Refuses before anything is created when the root namespace is taken by another emulated cluster. */
export async function checkServersFree(id: string): Promise<void> {
  const other = listStates().find((s) => s.id !== id && s.servers);
  if (other) {
    throw new UserError(
      `testbed '${other.id}' already runs an emulated cluster (--servers) and owns the controller port ${CONTROLLER_IF} ` +
        `and the route to ${other.servers!.controllerAddr}/16; only one can be up: run 'migbench testbed down ${other.id}' first`,
    );
  }
  const link = await run('ip', ['-o', 'link', 'show', 'dev', CONTROLLER_IF], { allowFail: true });
  if (link.exitCode === 0) {
    throw new UserError(
      `interface ${CONTROLLER_IF} exists in the root namespace but no recorded testbed owns it (left by a crash?); ` +
        `remove it with 'ip link del ${CONTROLLER_IF}' if migbench created it`,
    );
  }
  const route = await run('ip', ['-4', '-o', 'route', 'show', 'match', '10.233.0.1'], { allowFail: true });
  const clash = route.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('default'));
  if (clash.length) {
    throw new UserError(
      `the root namespace already routes the management network 10.233.0.0/16 (${clash[0].trim()}); the emulated cluster needs it`,
    );
  }
}

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function applyStep(step: ServerStep, state: TestbedState, save: (s: TestbedState) => void): Promise<void> {
  const sv = state.servers!;
  switch (step.kind) {
    case 'mkdir':
      mkdirSync(step.path, { recursive: true });
      chmodSync(step.path, step.mode);
      return;
    case 'write':
      writeFileAtomic(step.path, step.content);
      chmodSync(step.path, step.mode);
      return;
    case 'copy':
      copyFileSync(step.from, step.to);
      chmodSync(step.to, step.mode);
      return;
    case 'keygen':
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', step.comment, '-f', step.path]);
      return;
    case 'known-hosts': {
      const lines = step.entries.map((e) => {
        const [type, key] = readFileSync(e.pubFile, 'utf8').trim().split(/\s+/);
        return `${e.names.join(',')} ${type} ${key}`;
      });
      writeFileAtomic(step.path, lines.join('\n') + '\n');
      chmodSync(step.path, 0o600);
      return;
    }
    case 'run':
      if (step.rootIf) {
        sv.controllerIf = step.rootIf;
        save(state);
      }
      await run(step.argv[0], step.argv.slice(1));
      return;
    case 'server': {
      const reaper = await reaperPath();
      const log = openSync(step.log, 'a');
      // detached: the server outlives this harness process; `down` ends it by PID
      const child = spawn(reaper, step.argv, { detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      if (!child.pid) throw new Error(`could not start ${formatServerStep(step)}`);
      state.processes.push(ownProcess(child.pid, step.tag));
      save(state);
      child.unref();
      return;
    }
  }
}

/** Waits until a server's (or the client's) sshd accepts connections (a server's once its libvirtd answers), then records its libvirtd. */
async function awaitServer(state: TestbedState, name: string, save: (s: TestbedState) => void, timeoutMs = 90_000): Promise<void> {
  const sv = state.servers!;
  const s = [...sv.servers, ...(sv.client ? [sv.client] : [])].find((v) => v.name === name)!;
  const launcher = state.processes.find((p) => p.tag === `server-${name}`)!;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkInterrupted();
    if (!isProcessAlive(launcher)) {
      const log = existsSync(s.log) ? readFileSync(s.log, 'utf8').trim().split('\n').slice(-5).join('\n  ') : '';
      throw new Error(`emulated server ${name} exited at start; last lines of ${s.log}:\n  ${log}`);
    }
    if (await tcpOpen(s.address, SSH_PORT, 1000)) break;
    if (Date.now() > deadline)
      throw new Error(
        `emulated server ${name}: sshd does not answer on ${s.address}:${SSH_PORT} after ${timeoutMs / 1000} s; see ${s.log}`,
      );
    await sleep(100);
  }
  for (const line of readFileSync(s.pidsFile, 'utf8').split('\n')) {
    const [what, pid] = line.trim().split(' ');
    if (!pid || procStartTime(Number(pid)) === null) continue;
    const tag = `${what}-${name}`;
    if (!state.processes.some((p) => p.tag === tag)) state.processes.push(ownProcess(Number(pid), tag));
  }
  save(state);
}

/** Turns the namespaces of a built local testbed into SSH servers. Cleanup on failure is the caller's (teardown). */
export async function upServers(
  state: TestbedState,
  save: (s: TestbedState) => void,
  onProgress?: (done: number, total: number, what: string) => void,
): Promise<void> {
  const plan = planServers(state.topology, serversDir(state.id));
  // recorded first: whatever follows, teardown removes the directory
  state.servers = plan.state;
  save(state);
  for (let i = 0; i < plan.steps.length; i++) {
    checkInterrupted();
    onProgress?.(i + 1, plan.steps.length, formatServerStep(plan.steps[i]));
    await applyStep(plan.steps[i], state, save);
  }
  const nodes = [...plan.state.servers, ...(plan.state.client ? [plan.state.client] : [])];
  await Promise.all(nodes.map((s) => awaitServer(state, s.name, save)));
  await startServerBmcs(state, save);
}

/**
 * Every server's BMC (server-bmcs.ts), in a process of its own that outlives this one: a fresh
 * BMC password in a secrets file (0600) that the printed inventory names, never the inventory itself.
 */
async function startServerBmcs(state: TestbedState, save: (s: TestbedState) => void, timeoutMs = 30_000): Promise<void> {
  const sv = state.servers!;
  sv.bmcSecrets = bmcSecretsPath(sv);
  writeFileAtomic(sv.bmcSecrets, stringify({ default: { user: SERVER_BMC_USER, password: randomBytes(8).toString('hex') } }), 0o600);
  save(state);
  const logFile = join(sv.dir, 'bmcs.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin/migbench.js'), 'testbed', 'bmcs-daemon', state.id], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (!child.pid) throw new Error('could not start the emulated BMCs');
  const daemon = ownProcess(child.pid, 'bmcs');
  state.processes.push(daemon);
  save(state);
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(bmcReadyPath(sv))) {
    checkInterrupted();
    if (!isProcessAlive(daemon) || Date.now() > deadline) {
      const last = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n  ') : '';
      throw new Error(`the emulated BMCs did not start within ${timeoutMs / 1000} s; last lines of ${logFile}:\n  ${last}`);
    }
    await sleep(100);
  }
  // recorded too: a BMC outliving a killed feeder is still ended by 'down'
  const pids = JSON.parse(readFileSync(bmcReadyPath(sv), 'utf8')) as Record<string, number>;
  for (const [name, pid] of Object.entries(pids)) state.processes.push(ownProcess(pid, `ipmi_sim-${name}`));
  save(state);
}

/**
 * Removes the controller interface and the private directory (keys, known_hosts, the
 * servers' libvirt state and runtime files). Call after the servers' processes ended.
 */
export async function teardownServers(s: ServersState | undefined): Promise<void> {
  if (!s) return;
  if (s.controllerIf) {
    // gone already when the switch namespace (holding its peer) was deleted
    const r = await run('ip', ['-o', 'link', 'show', 'dev', s.controllerIf], { allowFail: true });
    if (r.exitCode === 0) await run('ip', ['link', 'del', s.controllerIf], { allowFail: true });
  }
  // only the directory this testbed recorded, and only under the state dir
  if (s.dir.startsWith(`${stateDir()}/`) && s.dir.endsWith('-servers')) rmSync(s.dir, { recursive: true, force: true });
}
