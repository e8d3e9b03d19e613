import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execa } from 'execa';
import { runExperiment } from '../../harness/experiment/runner.ts';
import { summaryTable } from '../../harness/experiment/summary.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import { down } from '../../harness/testbed/local.ts';
import { migbench, netnsList, ROOT } from '../support/cli.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * A deliberately impossible record: the spec declares a 20 Mbit/s migration
 * link, the test raises the real htb classes to 200 Mbit/s after `testbed up`
 * (as a lab whose spec no longer matches its switch would), and the migration
 * then moves more bytes than 20 Mbit/s allow in its total time. The record
 * must carry the link-bound flag with its reason, and the run summary must say so.
 */
const SPEC = `${ROOT}test/e2e/specs/flags-link.yaml`;
const ID = 'h2f';
const out = fileScratchDir('mb-e2e-flags-');
const log = (l: string) => process.stderr.write(`${l}\n`);

afterAll(async () => {
  await down(ID);
});

/** Raises every htb class of the testbed's namespaces at `from` (tc's text, e.g. '20Mbit') to `to`; returns how many it changed. */
async function raiseHtb(from: string, to: string): Promise<number> {
  let changed = 0;
  for (const ns of (await netnsList()).filter((n) => n.startsWith(`mb-${ID}-`))) {
    const links = await execa('ip', ['-n', ns, '-o', 'link', 'show'], { reject: false });
    const devs = String(links.stdout)
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0])
      .filter((d): d is string => !!d);
    for (const dev of devs) {
      const r = await execa('ip', ['netns', 'exec', ns, 'tc', 'class', 'show', 'dev', dev], { reject: false });
      // tc has no JSON for classes here: "class htb 1:10 root prio 0 rate 20Mbit ceil 20Mbit ..."
      for (const m of String(r.stdout).matchAll(/^class htb (\S+) (?:root|parent (\S+)) .*?\brate (\S+) ceil/gm)) {
        if (m[3] !== from) continue;
        const parent = m[2] ?? `${m[1].split(':')[0]}:`;
        await execa('ip', [
          'netns',
          'exec',
          ns,
          'tc',
          'class',
          'change',
          'dev',
          dev,
          'parent',
          parent,
          'classid',
          m[1],
          'htb',
          'rate',
          to,
          'ceil',
          to,
        ]);
        changed++;
      }
    }
  }
  return changed;
}

describe('an impossible record is flagged', () => {
  it('a migration faster than the declared link rate carries faster_than_link, and the run summary shows FLAGGED', async () => {
    const up = await migbench(['testbed', 'up', SPEC]);
    expect(up.exitCode, String(up.stderr)).toBe(0);
    // both ends of both host NICs on the migration network
    expect(await raiseHtb('20Mbit', '200Mbit')).toBe(4);
    const res = await runExperiment({ specFile: SPEC, outDir: out, log });
    const [r] = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(r.status, r.reason ?? '').toBe('completed');
    expect(r.link_rate_mbit).toBe(20);
    const achievedMbit = (r.transferred_bytes! * 8) / (r.total_ms! * 1000);
    log(`achieved ${achievedMbit.toFixed(1)} Mbit/s over a link declared as ${r.link_rate_mbit} Mbit/s`);
    expect(achievedMbit).toBeGreaterThan(20 * 1.5);
    const flag = (r.flags ?? []).find((f) => f.code === 'faster_than_link');
    expect(flag, JSON.stringify(r.flags)).toBeDefined();
    expect(flag!.reason).toMatch(/declared link rate of 20 Mbit\/s/);
    // nothing else about this record is wrong
    expect((r.flags ?? []).map((f) => f.code)).toEqual(['faster_than_link']);
    const summary = summaryTable(res.records);
    expect(summary).toMatch(new RegExp(`${r.id}: FLAGGED faster_than_link: .*declared link rate of 20 Mbit/s`));
  });
});
