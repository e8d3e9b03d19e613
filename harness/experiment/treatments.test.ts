import { describe, expect, it } from 'vitest';
import { parseSpecText } from '../spec/load.ts';
import { UserError } from '../util/errors.ts';
import { expandTreatments, fullFactorial, parsePath, setPath, shuffle, treatmentId } from './treatments.ts';

const YAML = `
name: f
testbed: {racks: [{name: r1, hosts: 2, host_nic: {rate: 100mbit}}]}
vms: [{name: vm1, host: r1-h1, workload: {kind: dirty, wset: 16MiB, bpc: 8}}]
factors:
  vms[0].workload.wset: [16MiB, 64MiB]
  testbed.racks[0].host_nic.rate: [50mbit, 100mbit, 200mbit]
`;

describe('treatments', () => {
  it('parses and sets spec paths without touching the original', () => {
    expect(parsePath('vms[0].workload.wset')).toEqual(['vms', 0, 'workload', 'wset']);
    const orig = { a: [{ b: 1 }] };
    expect(setPath(orig, 'a[0].b', 2)).toEqual({ a: [{ b: 2 }] });
    expect(orig.a[0].b).toBe(1);
  });

  it('expands the full factorial and applies each level to the spec', () => {
    const { spec, raw } = parseSpecText(YAML, 'f.yaml');
    const ts = expandTreatments(spec, raw, 'f.yaml');
    expect(ts).toHaveLength(6);
    expect(new Set(ts.map((t) => t.id)).size).toBe(6);
    const t = ts.find((x) => x.levels['vms[0].workload.wset'] === '64MiB' && x.levels['testbed.racks[0].host_nic.rate'] === '200mbit')!;
    expect(t.spec.vms[0].workload).toMatchObject({ kind: 'dirty', wset: '64MiB' });
    expect(t.spec.testbed.racks[0].host_nic?.rate).toBe('200mbit');
  });

  it('gives ids from levels alone, independent of key order', () => {
    expect(treatmentId({ a: 1, b: 'x' })).toBe(treatmentId({ b: 'x', a: 1 }));
    expect(treatmentId({ a: 1 })).not.toBe(treatmentId({ a: 2 }));
  });

  it('shuffles reproducibly from a seed', () => {
    const xs = Array.from({ length: 20 }, (_, i) => i);
    expect(shuffle(xs, 42)).toEqual(shuffle(xs, 42));
    expect(shuffle(xs, 42)).not.toEqual(xs);
    expect([...shuffle(xs, 42)].sort((a, b) => a - b)).toEqual(xs);
    expect(fullFactorial({})).toEqual([{}]);
  });

  it('rejects a level that makes the spec invalid, naming the treatment', () => {
    const bad = YAML.replace('[50mbit, 100mbit, 200mbit]', '[50mbit, fast]');
    const { spec, raw } = parseSpecText(bad, 'f.yaml');
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(UserError);
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(/testbed\.racks\[0\]\.host_nic\.rate: expected a positive rate/);
  });
});
