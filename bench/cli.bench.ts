/**
 * CLI start-up benchmark: wall time of `migbench` commands that end at once
 * (help, a status listing, a spec error, an analysis of a missing directory),
 * i.e. loading the CLI through tsx plus the asked command's modules. Each
 * command 5 times, median and range. Builds nothing.
 *
 *   node bin/run-ts.js bench/cli.bench.ts [n]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 5);
const migbench = fileURLToPath(new URL('../bin/migbench.js', import.meta.url));
const commands: [string, string[]][] = [
  ['--version', ['--version']],
  ['testbed status', ['testbed', 'status']],
  ['run <missing spec>', ['run', '/nonexistent/mb-bench.yaml']],
  ['analyze <missing dir>', ['analyze', '/nonexistent/mb-bench-run']],
  ['--help (every command)', ['--help']],
];
for (const [label, args] of commands) {
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, [migbench, ...args], { stdio: 'ignore' });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(24)} median ${(ms[N >> 1] / 1000).toFixed(2)} s (${(ms[0] / 1000).toFixed(2)}-${(ms[N - 1] / 1000).toFixed(2)} s, ${N} runs)`,
  );
}
