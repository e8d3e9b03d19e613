/**
 * A stand-in for the harness, wired like harness/cli/main.ts (signal and crash handlers,
 * registered cleanups) and starting a child the way the harness starts QEMU, ipmi_sim,
 * mb-probe and clients (spawnChild / spawnProcess: own process group, ended with the harness).
 *   tsx crash-harness.ts <mode> <childKind>
 * mode: sigint (loop with safe points until a signal), exit (leave the child to the exit hook),
 *       throw (uncaught exception in a timer), reject (unhandled rejection), idle (nothing registered).
 * childKind: spawn (node:child_process), execa (spawnProcess) or pdeathsig (spawnChild under setpriv --pdeathsig, like the KVM probe).
 * Prints `child <pid>` once the child runs, and `cleanup: child alive=<bool>` when the cleanup starts.
 */
import { spawnChild, spawnProcess, withPdeathsig } from '../../harness/util/exec.ts';
import { endProcess, isProcessAlive, ownProcess } from '../../harness/util/procs.ts';
import {
  checkInterrupted,
  installCrashHandlers,
  installSignalHandlers,
  Interrupted,
  registerCleanup,
  runCleanups,
} from '../../harness/util/signals.ts';

const [mode, kind = 'spawn'] = process.argv.slice(2);
installSignalHandlers();
installCrashHandlers({ settleMs: 200 });

const child =
  kind === 'execa'
    ? spawnProcess('sleep', ['300'], { stdio: 'ignore' })
    : kind === 'pdeathsig'
      ? spawnChild(...withPdeathsig('sleep', ['300']), { stdio: 'ignore' })
      : spawnChild('sleep', ['300'], { stdio: 'ignore' });
if (kind === 'execa') (child as unknown as Promise<unknown>).catch(() => undefined);
const owned = ownProcess(child.pid!, 'sleep');
process.stdout.write(`child ${child.pid}\n`);

if (mode !== 'idle' && mode !== 'exit') {
  registerCleanup(async () => {
    process.stdout.write(`cleanup: child alive=${isProcessAlive(owned)}\n`);
    await endProcess(owned, 2000);
    process.stdout.write('cleanup: done\n');
  });
}

async function mainFlow(): Promise<void> {
  if (mode === 'exit') process.exit(0);
  if (mode === 'throw')
    setTimeout(() => {
      throw new Error('ENOSPC: no space left on device, write');
    }, 100);
  if (mode === 'reject') setTimeout(() => void Promise.reject(new Error('EIO: disk buffer failed')), 100);
  // an analysis command: no safe point, one long wait (e.g. an HTTP request to a slow server)
  if (mode === 'idle') await new Promise((r) => setTimeout(r, 60_000));
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    checkInterrupted(); // a safe point, like between treatment steps
  }
}

mainFlow().catch(async (e: unknown) => {
  await runCleanups();
  if (e instanceof Interrupted) {
    process.stdout.write(`interrupted by ${e.signal}\n`);
    process.exit(130);
  }
  // Aborted after a crash: the crash handler exits
});
