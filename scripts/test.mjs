#!/usr/bin/env node
// `npm test`: the e2e files (one at a time: they build testbeds and boot guests) start at once; lint, the type
// check and the unit files run alongside at nice 19, in the CPU time the e2e files leave while they wait on
// guests and shaped links (~2.5 min of the suite before), and so do the e2e files that only wait (the vitest
// project `beside`, vitest.config.ts: ~40 s of the suite before). Their output is kept and printed after the
// e2e files', so it never interleaves with their lines; the exit status is non-zero if any part failed.
import { spawn } from 'node:child_process';

const t0 = Date.now();
const secs = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
const npx = (args) => ['npx', '--no-install', ...args];

/** Runs the steps in turn until one fails; resolves with the exit status. */
function steps(list, opts) {
  return list.reduce(
    (prev, argv) =>
      prev.then((code) => {
        if (code !== 0) return code;
        return new Promise((resolve) => {
          const child = spawn(argv[0], argv.slice(1), {
            ...opts,
            stdio: ['ignore', opts.out ? 'pipe' : 'inherit', opts.out ? 'pipe' : 'inherit'],
          });
          if (opts.out) {
            child.stdout.on('data', (d) => opts.out.push(d));
            child.stderr.on('data', (d) => opts.out.push(d));
          }
          child.on('error', (e) => {
            opts.out?.push(Buffer.from(`cannot run ${argv.join(' ')}: ${e.message}\n`));
            resolve(127);
          });
          child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
        });
      }),
    Promise.resolve(0),
  );
}

const unitOut = [];
const nice = ['nice', '-n', '19'];
const unit = steps(
  [
    [...nice, ...npx(['eslint', '.'])],
    [...nice, ...npx(['prettier', '--check', '.'])],
    [...nice, ...npx(['tsc', '--noEmit'])],
    [...nice, ...npx(['vitest', 'run', '--project', 'unit', '--fileParallelism', '--maxWorkers=2', '--minWorkers=1'])],
  ],
  { out: unitOut },
).then((code) => {
  // one line now (a block would break into vitest's live e2e output on a terminal), the output after the e2e summary
  process.stdout.write(
    `\n[npm test] lint, type check and unit tests ${code === 0 ? 'passed' : `FAILED (exit ${code})`} after ${secs()}; their output follows the e2e files'\n`,
  );
  return code;
});
// at normal priority: they start daemons (influxd) whose answers have timeouts, and use little CPU
const besideOut = [];
const beside = steps([npx(['vitest', 'run', '--project', 'beside'])], { out: besideOut }).then((code) => {
  process.stdout.write(
    `\n[npm test] e2e files beside the others (project beside) ${code === 0 ? 'passed' : `FAILED (exit ${code})`} after ${secs()}; their output follows the e2e files'\n`,
  );
  return code;
});
const e2e = steps([npx(['vitest', 'run', '--project', 'e2e'])], {});

const [u, b, e] = await Promise.all([unit, beside, e2e]);
process.stdout.write(
  `\n==== lint, type check and unit tests (nice 19, alongside the e2e files) ====\n${Buffer.concat(unitOut).toString('utf8')}==== end ====\n`,
);
process.stdout.write(
  `\n==== e2e files that only wait (project beside, alongside the others) ====\n${Buffer.concat(besideOut).toString('utf8')}==== end ====\n`,
);
const word = (c) => (c === 0 ? 'passed' : 'FAILED');
console.log(`npm test: lint/types/unit ${word(u)}, e2e ${word(e)}, e2e beside ${word(b)}; ${secs()} in all`);
process.exit(u !== 0 ? u : e !== 0 ? e : b);
