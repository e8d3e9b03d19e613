import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExperiment } from '../../harness/experiment/treatments.ts';
import { UserError } from '../../harness/util/errors.ts';
import { seededRng, type Rng } from '../../harness/util/rng.ts';
import { migbench, netnsList } from '../support/cli.ts';

/**
 * Hostile specs from a seeded generator, through the validation `run`,
 * `run --dry-run` and `plan show` use (checkExperiment): every invalid one
 * must give a UserError located by file and spec path (or file:line:col for
 * YAML), quickly, and nothing else; every valid variation must pass.
 */

const dir = mkdtempSync(join(tmpdir(), 'mb-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Obj = Record<string, unknown>;

/** A valid spec every case starts from: 2 racks, 3 VMs, a plan with after/sync, a factor. */
function baseSpec(): Obj {
  return {
    name: 'fuzz',
    testbed: {
      racks: [
        { name: 'r1', hosts: 2, host_nic: { rate: '100mbit', delay: '1ms' } },
        { name: 'r2', hosts: ['x1', 'x2'] },
      ],
      aggregation: { rate: '1gbit' },
      shaping: [{ link: 'r1-h1/mig', rate: '50mbit', loss: '1%' }],
    },
    vms: [
      { name: 'a', host: 'r1-h1', memory: '128MiB', workload: { kind: 'dirty', wset: '16MiB', bpc: 2, period: '10ms' } },
      {
        name: 'b',
        host: 'r1-h2',
        memory: '64MiB',
        workload: { kind: 'cpu', util: '50%' },
        clients: [{ kind: 'probe', op: 'page', interval: '1s' }],
      },
      { name: 'c', host: 'r1-h2', workload: { kind: 'stress', vm: 4, vm_bytes: '1MiB' } },
    ],
    migration: {
      max_time: '60s',
      downtime_limit: '300ms',
      plan: { kind: 'parallel', after: [{ vm: 'c', after: 'a' }], sync: [['a', 'b']] },
      moves: [
        { vm: 'a', to: 'x1' },
        { vm: 'b', to: 'x2' },
        { vm: 'c', to: 'x1' },
      ],
    },
    measure: { probe_interval: '10ms', progress_interval: '100ms' },
    factors: { 'vms[0].workload.wset': ['8MiB', '16MiB'] },
    repetitions: 2,
  };
}

const clone = (o: Obj): Obj => structuredClone(o);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[r.int(xs.length)];

/** Sets a value at a dotted path of a plain object, creating missing mappings on the way. */
function put(o: Obj, path: string, value: unknown): Obj {
  const parts = path.split('.').flatMap((p) =>
    p
      .split(/\[(\d+)\]/)
      .filter(Boolean)
      .map((x) => (/^\d+$/.test(x) ? Number(x) : x)),
  );
  let cur = o as Record<string | number, unknown>;
  for (const p of parts.slice(0, -1)) {
    if (cur[p] === undefined) cur[p] = {};
    cur = cur[p] as Record<string | number, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
  return o;
}

interface Case {
  kind: string;
  /** YAML text of the spec. */
  text: string;
  valid: boolean;
}

const json = (o: unknown) => JSON.stringify(o, null, 1);

// --- the categories of hostile input ----------------------------------------

/** Fields and values of a wrong type for them. */
const TYPED: Array<[string, unknown[]]> = [
  ['name', [42, null, ['x'], { a: 1 }, true]],
  ['testbed', ['local', 3, null, []]],
  ['testbed.racks', [{}, 'r1', 7]],
  ['testbed.racks[0].hosts', ['two', 2.5, 0, -1, null, [], [1, 2]]],
  ['testbed.racks[0].host_nic.rate', [100, true, ['100mbit'], null]],
  ['vms', [{}, 'a', 1]],
  ['vms[0].memory', [128, null, true, { size: 1 }]],
  ['vms[0].vcpus', ['1', 0, 9, 1.5, -3]],
  ['vms[0].httpd', ['yes', 1]],
  ['vms[0].workload', ['dirty', { kind: 'nope' }, null, { kind: 'dirty' }]],
  ['vms[0].workload.bpc', ['2', -1, 1.5, 1e12]],
  ['vms[1].clients[0].op', ['pages', 3]],
  ['migration.mode', ['fast', 1]],
  ['migration.moves', [[], 'a', {}]],
  ['migration.plan.kind', ['chaotic', 3]],
  ['migration.plan.k', [1]],
  ['migration.capabilities.multifd', ['yes']],
  ['measure.power', ['on', 5]],
  ['repetitions', [0, -1, 1.5, '2', 1e9]],
  ['order', ['random', { kind: 'shuffled' }]],
  ['factors', [[], 'x', { 'vms[0].memory': [] }, { 'vms[0].memory': '128MiB' }]],
  ['description', [5, ['x']]],
];

/** Quantities out of range or not quantities. */
const RANGED: Array<[string, string[]]> = [
  ['vms[0].memory', ['0', '1', '0.5MiB', '15MiB', '2TiB', '1e9', '-128MiB', '128 MiBs', 'lots', '', 'NaN', 'Infinity']],
  ['vms[0].workload.wset', ['0', '0B', '2TiB', '-1M', '16MiB16']],
  ['vms[0].workload.period', ['0ms', '0s', '0.5ms', '25h', '10', 'soon']],
  ['vms[1].workload.util', ['150%', '-5%', '50', 'half']],
  ['vms[1].clients[0].interval', ['0ms', '0s', '100d']],
  ['testbed.racks[0].host_nic.rate', ['0mbit', '1bit', '999bit', '100000000000000000000000bit', '101gbit', '1e23', 'fast', '-5mbit']],
  ['testbed.racks[0].host_nic.delay', ['360000000000000000000000000ms', '61s', '2h', '-1ms', '1 fortnight']],
  ['testbed.shaping[0].loss', ['101%', '1e3%', '-1%', '5']],
  ['migration.max_time', ['0s', '0ms', '0.1ms', '2d', '25h']],
  ['migration.downtime_limit', ['0ms', '2001s']],
  ['migration.max_bandwidth', ['0kbit', '1e30gbit', '10bit']],
  ['migration.pause', ['-1s', '48h']],
  ['measure.probe_interval', ['0ms', '0us', '500us', '2d']],
  ['measure.progress_interval', ['0ms']],
];

/** Names that are no names, or names the testbed reserves. */
const NAMED: Array<[string, unknown[]]> = [
  ['name', ['', 'Fuzz', 'a b', 'x'.repeat(33), '-x', 'ünï', 'a/b', 'a;rm -rf /', '$(id)']],
  ['testbed.racks[0].name', ['', 'R1', 'rack-with-a-long-name', 'a_b']],
  ['testbed.racks[1].hosts', [['sw'], ['client'], ['x1', 'x1'], ['X1'], ['a'.repeat(13)], ['r1-h1'], ['../etc']]],
  ['testbed.racks[1].name', ['r1']],
  ['testbed.id', ['', 'ID', 'a'.repeat(13), 'a b']],
  ['vms[0].name', ['', 'A', 'b', 'a'.repeat(13), 'a.b']],
  ['vms[0].host', ['nowhere', 'sw', 'client', '']],
  ['testbed.shaping[0].link', ['r9-h1', 'r1-h1/data', 'client/mig', '']],
  ['migration.moves[0].vm', ['zz', '']],
  ['migration.moves[0].to', ['nowhere', 'client']],
];

/** Factor paths that do not lead into the spec, or lead out of it. */
const FACTOR_PATHS = [
  '__proto__',
  '__proto__.polluted',
  'constructor',
  'constructor.prototype.x',
  'vms[0].__proto__.x',
  'vms[0].constructor',
  'prototype',
  'testbed.racks[0].prototype',
  'vms[9].memory',
  'vms[0].workload.nothing.deeper',
  'migration.plan.after[5].vm',
  'name',
  'factors',
  'repetitions',
  'order.kind',
  'compare.alpha',
  'vms..memory',
  'vms[0]memory',
  '.vms',
  'vms[-1].memory',
  'vms[0].memory[0]',
  '',
  ' ',
  'testbed.racks[0].hosts[0]',
  'measure.power.interval',
  'vms[0][0]',
];

/** Plan graphs that can never finish, or name what does not exist. */
const PLANS: Array<(o: Obj) => void> = [
  (o) => put(o, 'migration.moves[0].to', 'r1-h1'), // to the VM's own host
  (o) =>
    put(o, 'migration.plan.after', [
      { vm: 'a', after: 'c' },
      { vm: 'c', after: 'a' },
    ]),
  (o) =>
    put(o, 'migration.plan.after', [
      { vm: 'a', after: 'b' },
      { vm: 'b', after: 'c' },
      { vm: 'c', after: 'a' },
    ]),
  (o) => put(o, 'migration.plan.after', [{ vm: 'a', after: 'a' }]),
  (o) => put(o, 'migration.plan.after', [{ vm: 'a', after: 'b' }]), // a waits for b, but a and b are synced
  (o) => put(o, 'migration.plan', { kind: 'capped', k: 1, sync: [['a', 'b']] }),
  (o) => put(o, 'migration.plan', { kind: 'per_server', k: 1, sync: [['b', 'c']] }),
  (o) =>
    put(o, 'migration.plan', {
      kind: 'groups',
      groups: [
        ['a', 'zz'],
        ['b', 'c'],
      ],
    }),
  (o) => put(o, 'migration.plan', { kind: 'groups', groups: [['a'], ['b']] }),
  (o) =>
    put(o, 'migration.plan', {
      kind: 'groups',
      groups: [
        ['a', 'b'],
        ['b', 'c'],
      ],
    }),
  (o) => put(o, 'migration.plan', { kind: 'parallel', sync: [['a', 'nobody']] }),
  (o) => put(o, 'migration.plan', { kind: 'parallel', boot: ['r9-h9'] }),
  (o) => put(o, 'migration.plan', { kind: 'parallel', boot: ['r1-h1'] }),
  (o) => put(o, 'migration.plan', { kind: 'parallel', shutdown: ['x1'] }),
  (o) => put(o, 'migration.plan', { kind: 'sequential', k: 2 }),
  (o) => put(o, 'migration.plan', { kind: 'capped' }),
  (o) => put(o, 'migration.plan', { kind: 'capped', k: 0 }),
  (o) =>
    put(o, 'migration.moves', [
      { vm: 'a', to: 'x1' },
      { vm: 'a', to: 'x2' },
    ]),
  (o) => put(o, 'migration.moves', [{ vm: 'ghost', to: 'x1' }]),
  // valid base, a factor level that breaks the plan of one treatment only
  (o) => put(o, 'factors', { 'migration.moves[1].to': ['x2', 'r1-h2'] }),
  (o) => put(o, 'factors', { 'migration.plan.kind': ['parallel', 'capped'] }),
  (o) => put(o, 'factors', { 'vms[0].memory': ['64MiB', '1MiB'] }),
  (o) =>
    put(o, 'factors', {
      'testbed.racks[1].hosts': [
        ['x1', 'x2'],
        ['x1', 'sw'],
      ],
    }),
];

/** Topologies the address plan cannot hold. */
const TOPOLOGIES: Array<(r: Rng) => Obj> = [
  (r) => ({ racks: [{ name: 'r1', hosts: 100 + r.int(1000) }] }),
  (r) => ({ racks: [{ name: 'r1', hosts: Array.from({ length: 100 + r.int(300) }, (_, i) => `h${i}`) }] }),
  (r) => ({ racks: Array.from({ length: 100 + r.int(200) }, (_, i) => ({ name: `r${i}`, hosts: 1 })) }),
  () => ({ racks: [{ name: 'r1', hosts: ['sw', 'h2'] }] }),
  () => ({ racks: [{ name: 'r1', hosts: ['client'] }] }),
  () => ({ racks: [] }),
];

/** YAML that is no spec: alias bombs, undefined aliases, odd keys, deep nesting, size. */
function hostileYaml(r: Rng): string {
  const width = 5 + r.int(10);
  const depth = 4 + r.int(6);
  switch (r.int(8)) {
    case 0: {
      // billion laughs: each level repeats the previous one `width` times
      const lines = [`l0: &l0 [${Array(width).fill('x').join(', ')}]`];
      for (let d = 1; d < depth; d++)
        lines.push(
          `l${d}: &l${d} [${Array(width)
            .fill(`*l${d - 1}`)
            .join(', ')}]`,
        );
      return `name: bomb\ntestbed:\n  racks: [{name: r1, hosts: 1}]\n${lines.join('\n')}\n`;
    }
    case 1:
      return `name: x\ntestbed: *${pick(r, ['nope', 'tb', 'a1'])}\n`;
    case 2:
      return `name: x\ntestbed:\n  racks: [{name: r1, hosts: *n}]\nn: &n 2\n`;
    case 3:
      return `name: x\n? [${pick(r, ['a', 'b, c'])}]\n: 1\ntestbed: {racks: [{name: r1, hosts: 1}]}\n`;
    case 4:
      return `name: x\ntestbed: {racks: [{name: r1, hosts: 1}]}\nvms: ${'['.repeat(40 + r.int(400))}${']'.repeat(40 + r.int(1))}\n`;
    case 5:
      return `name: x\nname: y\ntestbed: {racks: [{name: r1, hosts: 1}]}\n`;
    case 6:
      return pick(r, [
        '',
        '42\n',
        '- a\n- b\n',
        'just text\n',
        'null\n',
        '---\na: 1\n---\nb: 2\n',
        'name: !!js/function x\n',
        '\t- x: [\n',
      ]);
    default:
      return `name: x\ndescription: "${'x'.repeat((1 << 20) + r.int(1000))}"\ntestbed: {racks: [{name: r1, hosts: 1}]}\n`;
  }
}

/** Valid variations: the generator must not only produce rejects. */
const VALID: Array<(r: Rng, o: Obj) => void> = [
  (r, o) => put(o, 'vms[0].memory', pick(r, ['16MiB', '256MiB', '1GiB', '1GB', '512M'])),
  (r, o) => put(o, 'testbed.racks[0].host_nic.rate', pick(r, ['1kbit', '100gbit', '20 Mbit/s', '2mbps'])),
  (r, o) => put(o, 'testbed.racks[0].host_nic.delay', pick(r, ['0ms', '60s', '250us'])),
  (r, o) => put(o, 'migration.max_time', pick(r, ['1ms', '24h', '1.5s'])),
  (r, o) =>
    put(
      o,
      'migration.plan',
      pick(r, [
        { kind: 'sequential' },
        { kind: 'capped', k: 2 },
        { kind: 'per_server', k: 1, dst_k: 2 },
        { kind: 'groups', groups: [['a', 'b'], ['c']] },
      ]),
    ),
  (r, o) =>
    put(
      o,
      'testbed.racks[1].hosts',
      Array.from({ length: 2 + r.int(97) }, (_, i) => `x${i + 1}`),
    ),
  (r, o) => put(o, 'factors', { 'vms[0].memory': ['64MiB', '128MiB'], 'testbed.racks[0].host_nic.rate': ['10mbit', '20mbit', '1gbit'] }),
  (r, o) => put(o, 'testbed.id', pick(r, ['mine', 'a', 'x-1'])),
];

function generate(seed: number, n: number): Case[] {
  const r = seededRng(seed);
  const out: Case[] = [];
  const spec = (kind: string, o: Obj, valid = false) => out.push({ kind, text: json(o), valid });
  while (out.length < n) {
    const o = clone(baseSpec());
    switch (out.length % 9) {
      case 0: {
        const [path, values] = pick(r, TYPED);
        spec(`type ${path}`, put(o, path, pick(r, values)));
        break;
      }
      case 1: {
        const [path, values] = pick(r, RANGED);
        spec(`range ${path}`, put(o, path, pick(r, values)));
        break;
      }
      case 2: {
        const [path, values] = pick(r, NAMED);
        spec(`name ${path}`, put(o, path, pick(r, values)));
        break;
      }
      case 3: {
        const path = pick(r, FACTOR_PATHS);
        // JSON keeps '__proto__' an own key; YAML too (checked below: nothing polluted)
        out.push({
          kind: `factor path '${path}'`,
          text: json(o).replace(/"factors": \{[^}]*\}/, `"factors": {${JSON.stringify(path)}: [1, 2]}`),
          valid: false,
        });
        break;
      }
      case 4: {
        // too many treatments: the product is refused before anything is expanded
        const k = 5 + r.int(10);
        const factors: Obj = {};
        const paths = [
          'vms[0].memory',
          'vms[1].memory',
          'vms[2].memory',
          'vms[0].vcpus',
          'vms[1].vcpus',
          'vms[2].vcpus',
          'vms[0].httpd',
          'vms[1].httpd',
          'vms[2].httpd',
          'migration.max_time',
          'migration.pause',
          'measure.probe_interval',
          'testbed.racks[0].host_nic.rate',
          'migration.downtime_limit',
        ];
        for (const p of paths.slice(0, k))
          factors[p] = Array.from({ length: 10 }, (_, i) =>
            p.endsWith('httpd') ? i % 2 === 0 : p.endsWith('vcpus') ? 1 + (i % 8) : `${16 + i}MiB`,
          );
        spec(`${k} factors x 10 levels`, put(o, 'factors', factors));
        break;
      }
      case 5:
        spec('plan graph', (pick(r, PLANS)(o), o));
        break;
      case 6:
        spec('topology', put(o, 'testbed', pick(r, TOPOLOGIES)(r)));
        break;
      case 7:
        out.push({ kind: 'yaml', text: hostileYaml(r), valid: false });
        break;
      default:
        pick(r, VALID)(r, o);
        spec('valid variation', o, true);
    }
  }
  return out;
}

/** A located message: file then line:col (YAML), or file (and treatment) then a spec path, on every line. */
function located(message: string, file: string): boolean {
  const esc = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // a spec path: keys, [index], or a quoted key (factors[" "]); '(top level)' for the document itself
  const path = '(\\(top level\\)|[A-Za-z_](?:[^ :"]|\\[".*?"\\])*)';
  const one = new RegExp(`^${esc}(:\\d+:\\d+: | \\(treatment .*\\): ${path}: |: ${path}: )`);
  const lines = message.split('\n');
  if (lines.length === 1) return one.test(lines[0]);
  // several problems: a header naming the file, then one located line each
  return new RegExp(`^${esc}( \\(treatment .*\\))?: \\d+ problems$`).test(lines[0]) && lines.slice(1).every((l) => one.test(l.trim()));
}

const CASES = generate(20261130, 360);
const PER_CASE_MS = 3000;

describe('hostile specs (seeded fuzz)', () => {
  it('generates at least 300 invalid specs across every category, and valid ones', () => {
    const invalid = CASES.filter((c) => !c.valid);
    expect(invalid.length).toBeGreaterThanOrEqual(300);
    const kinds = new Set(invalid.map((c) => c.kind.split(' ')[0]));
    for (const k of ['type', 'range', 'name', 'factor', 'plan', 'topology', 'yaml']) expect(kinds.has(k), k).toBe(true);
    expect(CASES.some((c) => c.valid)).toBe(true);
  });

  it('every invalid spec is a located UserError in bounded time; every valid one passes', () => {
    const failures: string[] = [];
    let slowest = 0;
    CASES.forEach((c, i) => {
      const file = join(dir, `case-${i}.yaml`);
      writeFileSync(file, c.text);
      const t0 = performance.now();
      let err: unknown = null;
      try {
        checkExperiment(file);
      } catch (e) {
        err = e;
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      const what = `case ${i} (${c.kind})`;
      if (ms > PER_CASE_MS) failures.push(`${what}: took ${ms.toFixed(0)} ms`);
      if (c.valid) {
        if (err) failures.push(`${what}: valid spec refused: ${(err as Error).message}`);
      } else if (err === null) failures.push(`${what}: accepted\n${c.text.slice(0, 400)}`);
      else if (!(err instanceof UserError)) failures.push(`${what}: ${(err as Error).constructor.name}: ${(err as Error).message}`);
      else if (!located(err.message, file)) failures.push(`${what}: not located: ${err.message.slice(0, 300)}`);
    });
    expect(failures, failures.join('\n\n')).toEqual([]);
    expect(({} as Obj).polluted).toBeUndefined();
    expect(slowest).toBeLessThan(PER_CASE_MS);
    console.log(`${CASES.length} cases, slowest ${slowest.toFixed(0)} ms`);
  }, 120_000);
});

describe('hostile specs through the real CLI', () => {
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const cycle = clone(baseSpec());
  put(cycle, 'migration.plan.after', [
    { vm: 'a', after: 'c' },
    { vm: 'c', after: 'a' },
  ]);
  const ownHost = put(clone(baseSpec()), 'migration.moves[0].to', 'r1-h1');
  const memory = put(clone(baseSpec()), 'vms[1].memory', '0.5MiB');
  it.each([
    ['run', 'cycle.yaml', json(cycle), 'migration.plan.after[0], migration.plan.after[1]: precedence cycle'],
    ['run', 'own-host.yaml', json(ownHost), "migration.moves[0].to: vm 'a' is already on host 'r1-h1'"],
    ['plan', 'memory.yaml', json(memory), "vms[1].memory: expected 16MiB to 1TiB, got '0.5MiB'"],
    ['plan', 'alias.yaml', 'name: x\ntestbed: *tb\n', ":2:10: not valid YAML: alias '*tb' refers to no anchor"],
  ])(
    '%s %s: exit 2 and one located line, nothing built',
    async (cmd, name, text, expected) => {
      const file = write(name, text);
      const args = cmd === 'run' ? ['run', file, '--dry-run'] : ['plan', 'show', file];
      const r = await migbench(args);
      expect(r.exitCode, String(r.stderr)).toBe(2);
      const lines = String(r.stderr).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0].startsWith(`migbench: ${file}`), lines[0]).toBe(true);
      expect(lines[0]).toContain(expected);
      expect((await netnsList()).filter((n) => n.startsWith('mb-fuzz-'))).toEqual([]);
    },
    30_000,
  );

  it('plan show --width 1e12 is refused, and a valid spec with anchors is shown', async () => {
    const anchored =
      'name: fuzz\ntestbed:\n  racks: [{name: r1, hosts: 2, host_nic: &nic {rate: 100mbit}}, {name: r2, hosts: 1, host_nic: *nic}]\n' +
      'vms: [{name: a, host: r1-h1}]\nmigration: {moves: [{vm: a, to: r2-h1}]}\n';
    const file = write('anchored.yaml', anchored);
    const wide = await migbench(['plan', 'show', file, '--width', '1e12']);
    expect(wide.exitCode).toBe(2);
    expect(String(wide.stderr).trim()).toBe('migbench: --width: expected an integer from 10 to 1000, got 1000000000000');
    const ok = await migbench(['plan', 'show', file]);
    expect(ok.exitCode, String(ok.stderr)).toBe(0);
    expect(String(ok.stdout)).toContain('migrate a r1-h1 -> r2-h1');
  }, 30_000);
});
