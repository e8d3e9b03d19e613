import { describe, expect, it } from 'vitest';
import { UserError } from '../util/errors.ts';
import { parseSpecText, testbedId } from './load.ts';

const base = (testbed: string) => `name: x\ntestbed:\n${testbed}`;

function errorOf(text: string): UserError {
  try {
    parseSpecText(text, 'bad.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('spec was accepted');
}

describe('spec validation', () => {
  it.each([
    ['unknown key', base('  racks: [{name: r1, hosts: 2}]\n  colour: red\n'), "bad.yaml: testbed.colour: unknown key 'colour'"],
    [
      'negative rate',
      base('  racks: [{name: r1, hosts: 2, host_nic: {rate: -5mbit}}]\n'),
      'bad.yaml: testbed.racks[0].host_nic.rate: expected a positive rate',
    ],
    [
      'rate: fast',
      base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h1, rate: fast}]\n'),
      'bad.yaml: testbed.shaping[0].rate: expected a positive rate',
    ],
    [
      'host in two racks',
      base('  racks: [{name: r1, hosts: [a, b]}, {name: r2, hosts: [b]}]\n'),
      "bad.yaml: testbed.racks[1].hosts: host 'b' is already in rack 'r1'",
    ],
    [
      'unknown link',
      base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r9-h1, rate: 10mbit}]\n'),
      "bad.yaml: testbed.shaping[0].link: unknown link 'r9-h1'",
    ],
    [
      'loss over 100 %',
      base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h1, loss: 150%}]\n'),
      'bad.yaml: testbed.shaping[0].loss: expected a percentage',
    ],
    [
      'unknown vm host',
      base('  racks: [{name: r1, hosts: 2}]\nvms: [{name: v, host: r7-h1}]\n'),
      "bad.yaml: vms[0].host: unknown host 'r7-h1'",
    ],
  ])('%s gives one message with the spec path', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.message.startsWith(expected), e.message).toBe(true);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.exitCode).toBe(2);
  });

  const racks = '  racks: [{name: r1, hosts: 2}]\n';
  const vm = (extra: string) => base(`${racks}vms: [{name: v, host: r1-h1, ${extra}}]\n`);
  const mig = (extra: string) => `${vm('memory: 128MiB')}migration: {moves: [{vm: v, to: r1-h2}], ${extra}}\n`;
  it.each([
    ['memory 0', vm('memory: 0'), 'vms[0].memory: expected a size like 128MiB'],
    ['memory 0B', vm('memory: 0B'), "vms[0].memory: expected 16MiB to 1TiB, got '0B'"],
    ['memory 1', vm('memory: "1"'), 'vms[0].memory: expected 16MiB to 1TiB'],
    ['memory 0.5MiB', vm('memory: 0.5MiB'), "vms[0].memory: expected 16MiB to 1TiB, got '0.5MiB'"],
    ['memory 2TiB', vm('memory: 2048GiB'), 'vms[0].memory: expected 16MiB to 1TiB'],
    ['probe interval 0', `${base(racks)}measure: {probe_interval: 0ms}\n`, 'measure.probe_interval: expected 1ms to 24h'],
    ['dirty period 0', vm('workload: {kind: dirty, wset: 8MiB, bpc: 1, period: 0ms}'), 'vms[0].workload.period: expected 1ms to 24h'],
    ['max_time 0', mig('max_time: 0s'), 'migration.max_time: expected 1ms to 24h'],
    [
      'rate 1e23',
      base(`${racks}  aggregation: {rate: 100000000000000000000000bit}\n`),
      'testbed.aggregation.rate: expected 1kbit to 100gbit',
    ],
    [
      'rate 10 bit/s',
      base('  racks: [{name: r1, hosts: 2, host_nic: {rate: 10bit}}]\n'),
      'testbed.racks[0].host_nic.rate: expected 1kbit to 100gbit',
    ],
    [
      'delay 3.6e26 ms',
      base('  racks: [{name: r1, hosts: 2, host_nic: {delay: 360000000000000000000000000ms}}]\n'),
      'testbed.racks[0].host_nic.delay: expected 0ms to 60s',
    ],
    [
      'host named client',
      base('  racks: [{name: r1, hosts: [a, client]}]\n'),
      "testbed.racks[0].hosts[1]: expected a host name other than 'sw' and 'client'",
    ],
    [
      'host named sw',
      base('  racks: [{name: r1, hosts: [sw]}]\n'),
      "testbed.racks[0].hosts[0]: expected a host name other than 'sw' and 'client'",
    ],
    [
      '300 hosts',
      base(`  racks: [{name: r1, hosts: [${Array.from({ length: 300 }, (_, i) => `h${i}`).join(', ')}]}]\n`),
      'testbed.racks[0].hosts: expected a host count (1-99) or a list of 1-99',
    ],
    [
      '100 racks',
      base(`  racks: [${Array.from({ length: 100 }, (_, i) => `{name: r${i}, hosts: 1}`).join(', ')}]\n`),
      'testbed.racks: expected at most 99 racks',
    ],
  ])('bounds: %s', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.message, e.message).toContain(`bad.yaml: ${expected}`);
  });

  it('disks and block migration: a local disk moves only by mode block; feature settings resolve', () => {
    const disk = (d: string, m: string, driver = '') =>
      `name: x\ntestbed: {racks: [{name: r1, hosts: 2}]${driver}}\nvms: [{name: v, host: r1-h1, disk: ${d}}]\n` +
      `migration: {${m}moves: [{vm: v, to: r1-h2}]}\n`;
    expect(errorOf(disk('{size: 64MiB}', '')).message).toBe(
      "bad.yaml: vms[0].disk.storage: vm 'v' has a local disk but migration.mode is 'live': use mode 'block' (copies the disk) or storage 'shared'",
    );
    expect(errorOf(disk('{size: 64MiB, format: vmdk}', 'mode: block, ')).message).toContain(
      "vms[0].disk.format: expected format 'raw' or 'qcow2'",
    );
    expect(errorOf(disk('{size: 64MiB}', 'mode: block, ', ', driver: ssh, inventory: i.yaml')).message).toContain(
      'migration.mode: block migration is implemented for the local driver only',
    );
    const { spec } = parseSpecText(
      disk('{size: 64MiB, storage: shared}', 'multifd_channels: 4, xbzrle_cache: 32MiB, throttle: {initial: 50%}, '),
      'ok.yaml',
    );
    expect(spec.vms[0].disk).toMatchObject({ format: 'qcow2', storage: 'shared' });
    expect(spec.vms[0].disk!.size.bytes).toBe(64 * 2 ** 20);
    expect(spec.migration!.xbzrle_cache!.bytes).toBe(32 * 2 ** 20);
    expect(spec.migration!.throttle!.initial!.pct).toBe(50);
    expect(parseSpecText(disk('{size: 64MiB}', 'mode: block, '), 'ok.yaml').spec.migration!.mode).toBe('block');
  });

  it('resolves quantities once, keeping what the user wrote', () => {
    const { spec } = parseSpecText(mig('max_time: 20s, max_bandwidth: 20mbit/s'), 'ok.yaml');
    expect(spec.migration!.max_time.ms).toBe(20_000);
    expect(`not completed within max_time ${spec.migration!.max_time}`).toBe('not completed within max_time 20s');
    expect(spec.migration!.max_bandwidth!.bps).toBe(20e6);
    expect(spec.migration!.downtime_limit.ms).toBe(300); // default resolved too
    expect(spec.vms[0].memory.bytes).toBe(128 * 2 ** 20);
    expect(spec.measure.probe_interval.ms).toBe(10);
    expect(JSON.parse(JSON.stringify(spec)).migration.max_time).toBe('20s');
  });

  it('derives testbed ids that do not collide when names share 12 characters', () => {
    const id = (name: string, explicit?: string) => testbedId({ name, testbed: { id: explicit } });
    expect(id('quickstart')).toBe('quickstart');
    expect(id('salfner-wset-a')).not.toBe(id('salfner-wset-b'));
    for (const n of ['salfner-wset-a', 'salfner-wset-b', 'a-very-long-experiment-name-1234']) {
      expect(id(n)).toMatch(/^[a-z0-9][a-z0-9-]{0,11}$/);
      expect(id(n)).toBe(id(n));
    }
    expect(id('salfner-wset-a', 'mine')).toBe('mine');
    // the longest namespace built from an id: mb-<id>-<12-char host>
    expect(`mb-${id('a-very-long-experiment-name-1234')}-${'h'.repeat(12)}`.length).toBeLessThanOrEqual(28);
  });

  it('refuses YAML that is no spec with a located error, not a stack trace', () => {
    const bomb =
      'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n' +
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n';
    expect(errorOf(bomb).message).toMatch(/^bad\.yaml:\d+:\d+: not usable as a spec: .*alias/i);
    expect(errorOf('name: x\ntestbed: *nope\n').message).toBe(
      "bad.yaml:2:10: not valid YAML: alias '*nope' refers to no anchor defined before it",
    );
    expect(errorOf('? [a]\n: 1\n').message).toMatch(/^bad\.yaml:1:3: not valid in a spec: a key must be a plain name/);
    expect(errorOf(`a: ${'['.repeat(200)}${']'.repeat(200)}\n`).message).toMatch(
      /^bad\.yaml(:\d+:\d+)?: not (usable as a spec|valid YAML)/,
    );
    expect(errorOf('a: !!js/function x\n').message).toMatch(/^bad\.yaml:1:\d+: not valid YAML: Unresolved tag/);
  });

  it('accepts anchors, aliases and merge keys', () => {
    const text =
      'name: x\nnic: &nic {rate: 100mbit}\ntestbed:\n  racks: [{name: r1, hosts: 2, host_nic: *nic}]\n  aggregation: {<<: *nic, delay: 1ms}\n';
    expect(errorOf(text).message).toBe("bad.yaml: nic: unknown key 'nic'"); // anchors live in spec keys only
    const ok =
      'name: x\ntestbed:\n  racks: [{name: r1, hosts: 2, host_nic: &nic {rate: 100mbit}}, {name: r2, hosts: 1, host_nic: *nic}]\n' +
      '  aggregation: {<<: *nic, delay: 1ms}\n';
    const { spec } = parseSpecText(ok, 'ok.yaml');
    expect(spec.testbed.racks[1].host_nic?.rate?.bps).toBe(100e6);
    expect(spec.testbed.aggregation?.delay?.ms).toBe(1);
  });

  it('reports YAML syntax errors with line and column', () => {
    expect(errorOf('name: x\ntestbed: [unclosed\n').message).toMatch(/^bad\.yaml:\d+:\d+: not valid YAML/);
  });

  it('fills defaults for a minimal valid spec', () => {
    const { spec } = parseSpecText(base('  racks: [{name: r1, hosts: 2}]\n'), 'ok.yaml');
    expect(spec.testbed.driver).toBe('local');
    expect(spec.testbed.migration_network).toBe('dedicated');
    expect(spec.repetitions).toBe(1);
  });
});
