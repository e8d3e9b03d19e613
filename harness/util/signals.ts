import { constants } from 'node:os';
import { errorMessage } from './errors.ts';
import { redactInText } from './redact.ts';

/**
 * Ctrl-C / SIGTERM handling for long commands: the first signal marks the
 * work as interrupted so it can stop at the next safe point and clean up;
 * cleanups registered here run once, in reverse order of registration.
 * A command with nothing registered (analysis, plan, status) has no safe
 * point to reach: it ends at once. An uncaught exception or unhandled
 * rejection runs the same cleanups before the process exits.
 */
type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];
let interruptedBy: NodeJS.Signals | null = null;
let crashed: unknown = undefined;
let installed = false;
let crashInstalled = false;
let pipeClosed = false;

export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }
}

/** Thrown at the next safe point after an internal error elsewhere, so the main flow stops starting things. */
export class Aborted extends Error {
  constructor(cause: unknown) {
    super(`stopped after an internal error: ${errorMessage(cause)}`);
    this.name = 'Aborted';
  }
}

export function exitCodeForSignal(sig: NodeJS.Signals): number {
  return 128 + (constants.signals[sig] ?? 2);
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
    if (cleanups.length === 0 && crashed === undefined) {
      // nothing to stop in order (e.g. an analysis command): end now, as without a handler
      process.stderr.write(`\n${sig} received: stopping\n`);
      process.exit(exitCodeForSignal(sig));
    }
    process.stderr.write(`\n${sig} received: stopping at the next safe point and cleaning up\n`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
}

/**
 * Uncaught exceptions and unhandled rejections: print one clear message, run the
 * registered cleanups once (guests, BMCs, testbed), give the main flow `settleMs` to
 * finish writing what it measured, and exit 1. Without this, Node would exit at once
 * and leave guests, BMCs and the testbed up.
 */
export function installCrashHandlers(opts: { mainDone?: Promise<unknown>; settleMs?: number } = {}): void {
  if (crashInstalled) return;
  crashInstalled = true;
  // A reader that went away (`migbench analyze dir | head`) is not a crash: stop quietly, like SIGPIPE
  // would, after the cleanups. Writing the error to a closed stderr would only raise it again.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') return;
      if (pipeClosed) return;
      pipeClosed = true;
      void runCleanups().finally(() => process.exit(process.exitCode ?? 0));
    });
  }
  const onFatal = (what: string) => async (e: unknown) => {
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE' || pipeClosed) return;
    if (crashed !== undefined) {
      process.stderr.write(`migbench: another ${what} while cleaning up: ${redactInText(errorMessage(e))}\n`);
      return;
    }
    crashed = e;
    const stack = e instanceof Error && e.stack ? `\n${redactInText(e.stack)}` : '';
    process.stderr.write(
      `migbench: internal error (${what}): ${redactInText(errorMessage(e))}${stack}\nmigbench: cleaning up (guests, BMCs, testbed) before exiting\n`,
    );
    await runCleanups();
    if (opts.mainDone) {
      await Promise.race([opts.mainDone.catch(() => undefined), new Promise((r) => setTimeout(r, opts.settleMs ?? 5000).unref())]);
    }
    process.stderr.write('migbench: cleanup done after the internal error above; exiting with code 1\n');
    process.exit(1);
  };
  process.on('uncaughtException', onFatal('uncaught exception'));
  process.on('unhandledRejection', onFatal('unhandled promise rejection'));
}

/** True once the crash handler took over: the main flow must not exit on its own. */
export function crashHandled(): boolean {
  return crashed !== undefined;
}

export function interrupted(): NodeJS.Signals | null {
  return interruptedBy;
}

/** Throws Interrupted if a signal arrived (Aborted after an internal error); call between steps. */
export function checkInterrupted(): void {
  if (interruptedBy) throw new Interrupted(interruptedBy);
  if (crashed !== undefined) throw new Aborted(crashed);
}

export function registerCleanup(fn: Cleanup): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs each registered cleanup once (concurrent callers never run the same one twice). */
export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (e) {
      process.stderr.write(`cleanup failed: ${redactInText(errorMessage(e))}\n`);
    }
  }
}
