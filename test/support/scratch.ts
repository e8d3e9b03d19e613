import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';
import type { RunnerTask } from 'vitest';

/**
 * Temp directories for tests (run directories, inventories, spec files), removed when the tests
 * that used them pass: a full `npm test` used to leave ~50 MB in /tmp each time. After a failure
 * the directory is kept for a look and its path printed.
 */

/** For a whole test file: call at the file's top level (or in a describe body), not inside a hook or test. */
export function fileScratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll((suite) => {
    if (keepAll || anyFailed(suite.tasks)) console.log(`kept ${dir} (${keepAll ? 'MB_KEEP_SCRATCH=1' : 'a test in this file failed'})`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** For one test: call inside the test. */
export function testScratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(({ task }) => {
    if (keepAll || task.result?.state === 'fail') console.log(`kept ${dir} (${keepAll ? 'MB_KEEP_SCRATCH=1' : 'this test failed'})`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** MB_KEEP_SCRATCH=1 keeps every directory (e.g. to read the run directories' timing.jsonl after a passing run). */
const keepAll = process.env.MB_KEEP_SCRATCH === '1';

function anyFailed(tasks: readonly RunnerTask[]): boolean {
  return tasks.some((t) => t.result?.state === 'fail' || (t.type === 'suite' && anyFailed(t.tasks)));
}
