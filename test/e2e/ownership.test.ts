import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePath, type TestbedState } from '../../harness/testbed/state.ts';
import { stateDir } from '../../harness/util/paths.ts';
import { isProcessAlive, ownProcess, procStartTime } from '../../harness/util/procs.ts';
import { migbench, netnsList } from '../support/cli.ts';

/**
 * Two real testbeds whose ids share a prefix: 'mbh4a' and 'mbh4a-b' (namespaces mb-mbh4a-* and
 * mb-mbh4a-b-*). Removing one must leave every namespace, helper process, log and state of the other.
 */
const dir = mkdtempSync('/tmp/mb-p-own-');
const SPEC_A = join(dir, 'a.yaml');
const SPEC_AB = join(dir, 'ab.yaml');
writeFileSync(SPEC_A, 'name: mbh4-own-a\ntestbed:\n  id: mbh4a\n  racks: [{name: r1, hosts: 1}]\n');
// a delay on a link: without netem this kernel needs a delay forwarder, i.e. a helper process with a log
writeFileSync(
  SPEC_AB,
  'name: mbh4-own-ab\ntestbed:\n  id: mbh4a-b\n  racks: [{name: r1, hosts: 2}]\n  shaping:\n    - {link: r1-h1, delay: 5ms}\n',
);

const nsOf = async (id: string) => (await netnsList()).filter((n) => n.startsWith(`mb-${id}-`));
const state = (id: string) => JSON.parse(readFileSync(statePath(id), 'utf8')) as TestbedState;

/** Everything testbed 'mbh4a-b' owns, to compare before and after. */
function snapshotAB(s: TestbedState) {
  return {
    namespaces: s.namespaces,
    alive: s.processes.map((p) => isProcessAlive(p)),
    logs: (s.logs ?? []).map((f) => existsSync(join(stateDir(), f))),
  };
}

async function upOk(spec: string): Promise<void> {
  const r = await migbench(['testbed', 'up', spec]);
  expect(r.exitCode, String(r.stderr)).toBe(0);
}

describe('testbed ownership by exact id', () => {
  beforeAll(async () => {
    await migbench(['testbed', 'down', 'mbh4a', '--force']);
    await migbench(['testbed', 'down', 'mbh4a-b', '--force']);
    await upOk(SPEC_AB);
    await upOk(SPEC_A);
  });
  afterAll(async () => {
    await migbench(['testbed', 'down', 'mbh4a', '--force']);
    await migbench(['testbed', 'down', 'mbh4a-b', '--force']);
    rmSync(dir, { recursive: true, force: true });
  });

  it("down of 'mbh4a' leaves the live testbed 'mbh4a-b' fully intact", async () => {
    const ab = state('mbh4a-b');
    expect(ab.processes.length).toBeGreaterThan(0);
    expect(ab.logs?.length).toBeGreaterThan(0);
    const before = snapshotAB(ab);
    expect(before.alive.every(Boolean) && before.logs.every(Boolean)).toBe(true);
    const nsAB = await nsOf('mbh4a-b');
    expect(nsAB.length).toBe(4); // sw, r1-h1, r1-h2, client
    const r = await migbench(['testbed', 'down', 'mbh4a']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/testbed 'mbh4a' removed: 3 namespaces/);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbh4a-') && !n.startsWith('mb-mbh4a-b-'))).toEqual([]);
    expect(await nsOf('mbh4a-b')).toEqual(nsAB);
    expect(existsSync(statePath('mbh4a-b'))).toBe(true);
    expect(snapshotAB(state('mbh4a-b'))).toEqual(before);
  });

  it('without a state file, a bare id is refused (exit 2, names the namespaces); the spec removes exactly its own', async () => {
    await upOk(SPEC_A);
    rmSync(statePath('mbh4a'));
    const refused = await migbench(['testbed', 'down', 'mbh4a']);
    expect(refused.exitCode).toBe(2);
    expect(String(refused.stderr)).toMatch(/no state file.*mb-mbh4a-sw.*--force/);
    expect(String(refused.stderr)).not.toMatch(/mb-mbh4a-b-/); // claimed by mbh4a-b's state file
    expect((await nsOf('mbh4a')).length).toBeGreaterThan(4);
    // `up` of the same spec names the leftovers and the exact command
    const again = await migbench(['testbed', 'up', SPEC_A]);
    expect(again.exitCode).toBe(2);
    expect(String(again.stderr)).toContain(`run 'migbench testbed down ${SPEC_A}'`);
    const before = snapshotAB(state('mbh4a-b'));
    const r = await migbench(['testbed', 'down', SPEC_A]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbh4a-') && !n.startsWith('mb-mbh4a-b-'))).toEqual([]);
    expect((await nsOf('mbh4a-b')).length).toBe(4);
    expect(snapshotAB(state('mbh4a-b'))).toEqual(before);
  });

  it('down of a testbed owned by a live run is refused with exit 2; a recycled owner PID does not count', async () => {
    const owner = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      const s = state('mbh4a-b');
      const stamped: TestbedState = { ...s, ownerRun: '/tmp/runs/mbh4-fake', upPid: owner.pid!, upStartTime: procStartTime(owner.pid!)! };
      writeFileSync(statePath('mbh4a-b'), JSON.stringify(stamped));
      for (const target of ['mbh4a-b', SPEC_AB]) {
        const r = await migbench(['testbed', 'down', target]);
        expect(r.exitCode).toBe(2);
        expect(String(r.stderr)).toMatch(/in use by a running 'migbench run' \(pid \d+, \/tmp\/runs\/mbh4-fake\).*--force/);
        expect((await nsOf('mbh4a-b')).length).toBe(4);
      }
      // same PID, other start time: the run that owned it is gone, the PID was reused
      writeFileSync(statePath('mbh4a-b'), JSON.stringify({ ...stamped, upStartTime: stamped.upStartTime! - 1 }));
      const r = await migbench(['testbed', 'down', 'mbh4a-b']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(await nsOf('mbh4a-b')).toEqual([]);
      expect(s.processes.some((p) => isProcessAlive(p))).toBe(false);
      expect((s.logs ?? []).some((f) => existsSync(join(stateDir(), f)))).toBe(false);
      expect(isProcessAlive(ownProcess(owner.pid!, 'sleep'))).toBe(true); // the "owner" itself is never touched
    } finally {
      owner.kill('SIGKILL');
    }
  });
});
