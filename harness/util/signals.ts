/**
 * Ctrl-C / SIGTERM handling for long commands: the first signal marks the
 * work as interrupted so it can stop at the next safe point and clean up;
 * cleanups registered here run once, in reverse order of registration.
 */
type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];
let interruptedBy: NodeJS.Signals | null = null;
let installed = false;

export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }
}

export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  const handler = (sig: NodeJS.Signals) => {
    if (interruptedBy) {
      process.stderr.write(`\nsecond ${sig}: cleaning up, please wait (kill -9 leaves state for 'migbench testbed down')\n`);
      return;
    }
    interruptedBy = sig;
    process.stderr.write(`\n${sig} received: stopping at the next safe point and cleaning up\n`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
}

export function interrupted(): NodeJS.Signals | null {
  return interruptedBy;
}

/** Throws Interrupted if a signal arrived; call between steps. */
export function checkInterrupted(): void {
  if (interruptedBy) throw new Interrupted(interruptedBy);
}

export function registerCleanup(fn: Cleanup): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (e) {
      process.stderr.write(`cleanup failed: ${(e as Error).message}\n`);
    }
  }
}
