import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, isUserError } from '../util/errors.ts';
import { redactInText } from '../util/redact.ts';
import { crashHandled, Interrupted, installCrashHandlers, installSignalHandlers, runCleanups } from '../util/signals.ts';
import { testbedCommand } from './testbed.ts';
import { resumeCommand, runCommand } from './run.ts';
import { planCommand } from './plan.ts';
import { baselineCommand, nightlyCommand } from './nightly.ts';
import { reproduceCommand } from './reproduce.ts';
import { analysisCommands } from '../../analysis/cli.ts';

/**
 * The `migbench` CLI. Each command module does one job; user-fixable
 * errors print one line and exit 2, interrupts exit 130 after cleanup.
 * Every message goes through redactInText: a URL with a login never reaches the terminal.
 */
async function main(): Promise<void> {
  installSignalHandlers();
  const cli: Argv = yargs(hideBin(process.argv))
    .scriptName('migbench')
    .command(testbedCommand)
    .command(runCommand)
    .command(resumeCommand)
    .command(planCommand)
    .command(nightlyCommand)
    .command(baselineCommand)
    .command(reproduceCommand)
    .command(analysisCommands)
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`migbench: ${redactInText(msg)}\n(see migbench --help)\n`);
      process.exit(2);
    })
    .help();
  await cli.parseAsync();
}

let settle: () => void = () => {};
const mainDone = new Promise<void>((r) => (settle = r));
// uncaught exceptions and unhandled rejections run the same cleanups as a failed main()
installCrashHandlers({ mainDone });

main().then(
  async () => {
    await runCleanups();
    settle();
  },
  async (e: unknown) => {
    await runCleanups();
    settle();
    if (crashHandled()) return; // the crash handler prints, waits for this, and exits
    if (e instanceof Interrupted) {
      process.stderr.write(`migbench: ${e.message}; everything created was removed\n`);
      process.exit(130);
    }
    if (isUserError(e)) {
      process.stderr.write(`migbench: ${redactInText(e.message)}\n`);
      process.exit(2);
    }
    process.stderr.write(`migbench: internal error: ${redactInText(errorMessage(e))}\n${redactInText((e as Error)?.stack ?? '')}\n`);
    process.exit(1);
  },
);
