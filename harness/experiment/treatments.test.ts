import { describe, expect, it } from 'vitest';
import { parseSpecText } from '../spec/load.ts';
import { UserError } from '../util/errors.ts';
import { expandTreatments, fullFactorial, parsePath, setPath, shuffle, treatmentCount, treatmentId } from './treatments.ts';

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
    const orig = { vms: [{ b: 1 }] };
    expect(setPath(orig, 'vms[0].b', 2)).toEqual({ vms: [{ b: 2 }] });
    expect(orig.vms[0].b).toBe(1);
  });

  it('expands the full factorial and applies each level to the spec', () => {
    const { spec, raw } = parseSpecText(YAML, 'f.yaml');
    const ts = expandTreatments(spec, raw, 'f.yaml');
    expect(ts).toHaveLength(6);
    expect(new Set(ts.map((t) => t.id)).size).toBe(6);
    const t = ts.find((x) => x.levels['vms[0].workload.wset'] === '64MiB' && x.levels['testbed.racks[0].host_nic.rate'] === '200mbit')!;
    const w = t.spec.vms[0].workload;
    expect(w.kind === 'dirty' && w.wset.bytes).toBe(64 * 2 ** 20);
    // resolved once, printed as written
    expect(t.spec.testbed.racks[0].host_nic?.rate?.bps).toBe(200e6);
    expect(`${t.spec.testbed.racks[0].host_nic?.rate}`).toBe('200mbit');
    expect(JSON.parse(JSON.stringify(t.spec)).vms[0].workload.wset).toBe('64MiB');
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

  it('refuses factor paths that do not lead into the spec, or through the prototype', () => {
    const cases: Array<[string, RegExp]> = [
      ['__proto__.polluted', /factors\.__proto__\.polluted: '__proto__' is not a spec key/],
      ['vms[0].constructor.prototype.x', /factors\.vms\[0\]\.constructor\.prototype\.x: 'constructor' is not a spec key/],
      ['vms[3].memory', /factors\.vms\[3\]\.memory: 'vms\[3\]' does not exist in the spec \(the list has 1 entries\)/],
      ['migration.max_time', /factors\.migration\.max_time: 'migration' does not exist in the spec/],
      ['name', /factors\.name: a factor varies testbed, vms, migration or measure, not 'name'/],
      ['vms..x', /factors\.vms\.\.x: expected a path like/],
    ];
    for (const [path, re] of cases) {
      const text = `${YAML.split('factors:')[0]}factors:\n  ${JSON.stringify(path)}: [1, 2]\n`;
      expect(() => parseSpecText(text, 'f.yaml'), path).toThrow(re);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('counts treatments before expanding and refuses too many', () => {
    const levels = `[${Array.from({ length: 10 }, (_, i) => `${16 + i}MiB`).join(', ')}]`;
    const many = Array.from({ length: 12 }, () => `  vms[0].workload.wset: ${levels}`);
    // twelve distinct paths to the same kind of value
    const paths = [
      'vms[0].workload.wset',
      'vms[0].workload.period',
      'vms[0].workload.bpc',
      'vms[0].memory',
      'vms[0].vcpus',
      'testbed.racks[0].host_nic.rate',
      'testbed.racks[0].host_nic.delay',
      'testbed.racks[0].host_nic.loss',
      'testbed.racks[0].host_nic.jitter',
      'vms[0].workload.fill',
      'vms[0].workload.hot',
      'vms[0].httpd',
    ];
    const text = `${YAML.split('factors:')[0]}factors:\n${paths.map((p, i) => many[i].replace('vms[0].workload.wset', p)).join('\n')}\n`;
    const { spec, raw } = parseSpecText(text, 'f.yaml');
    const t0 = Date.now();
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(
      /f\.yaml: factors: 10 x 10 .* = 1\.00e\+12 treatments, more than the 10000/,
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(treatmentCount(spec.factors)).toBe(1e12);
  });

  it("builds every treatment's plan: a level that makes the plan impossible fails at expansion", () => {
    const text = `name: f
testbed: {racks: [{name: r1, hosts: 2}]}
vms: [{name: vm1, host: r1-h1}]
migration: {moves: [{vm: vm1, to: r1-h2}]}
factors:
  migration.moves[0].to: [r1-h2, r1-h1]
`;
    const { spec, raw } = parseSpecText(text, 'f.yaml');
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(
      /^f\.yaml \(treatment \{"migration\.moves\[0\]\.to":"r1-h1"\}\): migration\.moves\[0\]\.to: vm 'vm1' is already on host 'r1-h1'/,
    );
  });

  it('rejects a level that makes the spec invalid, naming the treatment', () => {
    const bad = YAML.replace('[50mbit, 100mbit, 200mbit]', '[50mbit, fast]');
    const { spec, raw } = parseSpecText(bad, 'f.yaml');
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(UserError);
    expect(() => expandTreatments(spec, raw, 'f.yaml')).toThrow(/testbed\.racks\[0\]\.host_nic\.rate: expected a positive rate/);
  });
});
