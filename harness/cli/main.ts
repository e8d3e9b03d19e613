import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, isUserError } from '../util/errors.ts';
import { redactInText } from '../util/redact.ts';
import { crashHandled, Interrupted, installCrashHandlers, installSignalHandlers, runCleanups } from '../util/signals.ts';

/** yargs types each command by its own arguments; the registry holds them alike. */
const one = (c: object): CommandModule[] => [c as CommandModule];

/**
 * Each command's module, loaded only when that command is asked for: loading
 * all of them (the harness, analysis and their packages) took ~1.5 s of every
 * call through tsx, most of it for modules the command never uses.
 */
const COMMANDS: Record<string, () => Promise<CommandModule[]>> = {
  testbed: async () => one((await import('./testbed.ts')).testbedCommand),
  run: async () => one((await import('./run.ts')).runCommand),
  resume: async () => one((await import('./run.ts')).resumeCommand),
  plan: async () => one((await import('./plan.ts')).planCommand),
  nightly: async () => one((await import('./nightly.ts')).nightlyCommand),
  baseline: async () => one((await import('./nightly.ts')).baselineCommand),
  reproduce: async () => one((await import('./reproduce.ts')).reproduceCommand),
  ...Object.fromEntries(
    ['analyze', 'report', 'plot', 'fit', 'predict', 'compare', 'export'].map((c) => [
      c,
      async () => (await import('../../analysis/cli.ts')).analysisCommands,
    ]),
  ),
};

/** The modules for this command line: its command's, none for --version, or all of them (help, a typo: yargs lists every command). */
async function commandsFor(args: string[]): Promise<CommandModule[]> {
  const word = args.find((a) => !a.startsWith('-'));
  const load = COMMANDS[word ?? ''];
  if (load) return load();
  if (word === undefined && args.includes('--version') && !args.includes('--help')) return [];
  const all = await Promise.all([...new Set(Object.values(COMMANDS))].map((l) => l()));
  return [...new Set(all.flat())];
}

/**
 * The `migbench` CLI. Each command module does one job; user-fixable
 * errors print one line and exit 2, interrupts exit 130 after cleanup.
 * Every message goes through redactInText: a URL with a login never reaches the terminal.
 */
async function main(): Promise<void> {
  installSignalHandlers();
  const args = hideBin(process.argv);
  const cli: Argv = yargs(args)
    .scriptName('migbench')
    .command(await commandsFor(args))
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
