import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, isUserError } from '../util/errors.ts';
import { Interrupted, installSignalHandlers, runCleanups } from '../util/signals.ts';
import { testbedCommand } from './testbed.ts';
import { resumeCommand, runCommand } from './run.ts';
import { planCommand } from './plan.ts';
import { analysisCommands } from '../../analysis/cli.ts';

/**
 * The `migbench` CLI. Each command module does one job; user-fixable
 * errors print one line and exit 2, interrupts exit 130 after cleanup.
 */
async function main(): Promise<void> {
  installSignalHandlers();
  const cli: Argv = yargs(hideBin(process.argv))
    .scriptName('migbench')
    .command(testbedCommand)
    .command(runCommand)
    .command(resumeCommand)
    .command(planCommand)
    .command(analysisCommands)
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`migbench: ${msg}\n(see migbench --help)\n`);
      process.exit(2);
    })
    .help();
  await cli.parseAsync();
}

main().then(
  async () => {
    await runCleanups();
  },
  async (e: unknown) => {
    await runCleanups();
    if (e instanceof Interrupted) {
      process.stderr.write(`migbench: ${e.message}; everything created was removed\n`);
      process.exit(130);
    }
    if (isUserError(e)) {
      process.stderr.write(`migbench: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`migbench: internal error: ${errorMessage(e)}\n${(e as Error)?.stack ?? ''}\n`);
    process.exit(1);
  },
);
