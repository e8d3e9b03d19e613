import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { join } from 'node:path';
import { stateDir } from '../util/paths.ts';
import type { OwnedProcess } from '../util/procs.ts';
import type { KernelCaps, Mechanisms } from './shaping.ts';
import type { Topology } from './topology.ts';
import type { ServersState } from './servers-plan.ts';

/**
 * What a testbed created, persisted before each creation so that
 * `testbed down` can undo it after the harness was killed with -9.
 */
export interface TestbedState {
  id: string;
  specFile: string;
  createdAt: string;
  /** PID of the harness that ran `up` (to tell an interrupted `up` from a finished one). */
  upPid: number;
  /** Start time of that process (/proc stat field 22): a recycled PID is not the owner. Absent in old state files. */
  upStartTime?: number;
  complete: boolean;
  /** Set when a `migbench run` built this testbed for itself (then it is the run's to remove). */
  ownerRun?: string;
  /** Namespaces, each recorded before it is created: teardown acts on exactly these. */
  namespaces: string[];
  processes: OwnedProcess[];
  /** Log files in stateDir() written for this testbed (absent in old state files). */
  logs?: string[];
  topology: Topology;
  caps: KernelCaps | null;
  mechanisms: Record<string, Mechanisms>;
  /** The emulated cluster of SSH servers (`up --servers`): its directory and controller port, recorded before creation. */
  servers?: ServersState;
}

export function statePath(id: string): string {
  return join(stateDir(), `${id}.json`);
}

/** Atomic write (temp file + rename): a crash leaves the old or the new state, never half. */
export function saveState(s: TestbedState): void {
  mkdirSync(stateDir(), { recursive: true });
  const p = statePath(s.id);
  writeFileAtomic(p, JSON.stringify(s, null, 2));
}

export function loadState(id: string): TestbedState | null {
  const p = statePath(id);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as TestbedState;
}

export function removeState(id: string): void {
  rmSync(statePath(id), { force: true });
}

/** Namespaces recorded by the state files of testbeds other than `id`. */
export function namespacesClaimedByOthers(id: string): Set<string> {
  return new Set(
    listStates()
      .filter((s) => s.id !== id)
      .flatMap((s) => s.namespaces ?? []),
  );
}

export function listStates(): TestbedState[] {
  if (!existsSync(stateDir())) return [];
  return readdirSync(stateDir())
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      try {
        return JSON.parse(readFileSync(join(stateDir(), f), 'utf8')) as TestbedState;
      } catch {
        return null;
      }
    })
    .filter((s): s is TestbedState => s !== null);
}
