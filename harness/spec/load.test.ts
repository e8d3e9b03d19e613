import { describe, expect, it } from 'vitest';
import { UserError } from '../util/errors.ts';
import { parseSpecText } from './load.ts';

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
    ['negative rate', base('  racks: [{name: r1, hosts: 2, host_nic: {rate: -5mbit}}]\n'), 'bad.yaml: testbed.racks[0].host_nic.rate: expected a positive rate'],
    ['rate: fast', base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h1, rate: fast}]\n'), 'bad.yaml: testbed.shaping[0].rate: expected a positive rate'],
    ['host in two racks', base('  racks: [{name: r1, hosts: [a, b]}, {name: r2, hosts: [b]}]\n'), "bad.yaml: testbed.racks[1].hosts: host 'b' is already in rack 'r1'"],
    ['unknown link', base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r9-h1, rate: 10mbit}]\n'), "bad.yaml: testbed.shaping[0].link: unknown link 'r9-h1'"],
    ['loss over 100 %', base('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h1, loss: 150%}]\n'), 'bad.yaml: testbed.shaping[0].loss: expected a percentage'],
    ['unknown vm host', base('  racks: [{name: r1, hosts: 2}]\nvms: [{name: v, host: r7-h1}]\n'), "bad.yaml: vms[0].host: unknown host 'r7-h1'"],
  ])('%s gives one message with the spec path', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.message.startsWith(expected), e.message).toBe(true);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.exitCode).toBe(2);
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
