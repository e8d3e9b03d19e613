import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { migbench, netnsList } from '../support/cli.ts';
import { fileScratchDir } from '../support/scratch.ts';

const dir = fileScratchDir('mb-spec-');
const spec = (name: string, testbed: string) => {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, `name: bad\ntestbed:\n${testbed}`);
  return p;
};

describe('malformed specs on the command line', () => {
  it.each([
    ['unknown-key', '  racks: [{name: r1, hosts: 2}]\n  colour: red\n', 'testbed.colour'],
    ['negative-rate', '  racks: [{name: r1, hosts: 2, host_nic: {rate: -5mbit}}]\n', 'testbed.racks[0].host_nic.rate'],
    ['rate-fast', '  racks: [{name: r1, hosts: 2}]\n  aggregation: {rate: fast}\n', 'testbed.aggregation.rate'],
    ['two-racks', '  racks: [{name: r1, hosts: [a, b]}, {name: r2, hosts: [b]}]\n', 'testbed.racks[1].hosts'],
    ['unknown-link', '  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h9, rate: 1mbit}]\n', 'testbed.shaping[0].link'],
    // namespaces mb-<id>-client / -sw would be created twice; addresses past .99 or racks reaching the guests' 10.231.100.x
    ['host-client', '  racks: [{name: r1, hosts: [h1, client]}]\n', 'testbed.racks[0].hosts[1]'],
    [
      'hosts-300',
      `  racks: [{name: r1, hosts: [${Array.from({ length: 300 }, (_, i) => `h${i}`).join(', ')}]}]\n`,
      'testbed.racks[0].hosts',
    ],
    ['racks-100', `  racks: [${Array.from({ length: 100 }, (_, i) => `{name: r${i}, hosts: 1}`).join(', ')}]\n`, 'testbed.racks'],
  ])(
    '%s: exit 2, one line naming file and path, nothing created',
    async (name, body, path) => {
      const file = spec(name, body);
      // --dry-run: the same spec checks as `up`, but a spec that wrongly passed them builds nothing (unit tests run as root)
      const r = await migbench(['testbed', 'up', file, '--dry-run']);
      expect(r.exitCode).toBe(2);
      const lines = String(r.stderr).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`${file}: ${path}:`);
      expect(lines[0]).not.toMatch(/at .*\.ts:\d+/); // no stack trace
      expect((await netnsList()).filter((n) => n.startsWith('mb-bad-'))).toEqual([]);
    },
    30_000,
  ); // a CLI start is ~1.6 s alone, several times that on a loaded 2-core machine

  it.each([
    ['MIGBENCH_SAVED_GUESTS_MAX_MB', 'lots', 'must be a positive number of MiB (got "lots")'],
    ['MIGBENCH_GUEST_BOOT', 'warm', 'must be "auto" or "cold" (got "warm")'],
  ])(
    'run with %s=%s: exit 2, one line naming it, before anything else is read',
    async (name, value, what) => {
      // an absent inventory: were the variable not checked first, the inventory's error would come instead (no testbed either way)
      const r = await migbench(
        ['run', 'experiments/quickstart.yaml', '--inventory', join(dir, 'absent.yaml'), '--out', join(dir, 'runs')],
        {
          env: { [name]: value },
        },
      );
      expect(r.exitCode).toBe(2);
      expect(String(r.stderr).trim()).toBe(
        `migbench: ${name} ${what}${name === 'MIGBENCH_SAVED_GUESTS_MAX_MB' ? '; unset it for 4096' : ''}`,
      );
    },
    30_000,
  );

  it('a missing spec file is a clear error', async () => {
    const r = await migbench(['testbed', 'up', join(dir, 'nope.yaml'), '--dry-run']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/cannot read spec .*nope\.yaml.*no such file/);
  }, 30_000);
});
