import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { estimateModel, transferResources } from './estimate.ts';
import { loadPlan } from './load.ts';
import { formatGantt, formatPlanList } from './render.ts';
import { simulate } from './simulate.ts';
import { buildTopology } from '../testbed/topology.ts';
import { parseSpecText } from '../spec/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'mbplan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Two racks of 2 hosts behind a 1 Gbit/s interlink; 4 VMs of 256 MiB on rack r1. */
function specFile(plan: string, name = 'maint.yaml'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `name: maint
testbed:
  racks:
    - {name: r1, hosts: 2, host_nic: {rate: 1gbit}}
    - {name: r2, hosts: 2, host_nic: {rate: 1gbit}}
  aggregation: {rate: 1gbit}
vms:
  - {name: a1, host: r1-h1, memory: 256MiB}
  - {name: a2, host: r1-h1, memory: 256MiB}
  - {name: b1, host: r1-h2, memory: 256MiB}
  - {name: b2, host: r1-h2, memory: 256MiB}
migration:
  plan: ${plan}
  moves: [{vm: a1, to: r2-h1}, {vm: a2, to: r2-h1}, {vm: b1, to: r2-h2}, {vm: b2, to: r2-h2}]
`,
  );
  return file;
}

const opts = { unshapedRateBps: 1e9, bootMs: 30_000, shutdownMs: 10_000, goodput: 1 };
const estimate = (plan: string) => {
  const { spec, graph } = loadPlan(specFile(plan));
  return { graph, schedule: simulate(graph, estimateModel(spec, opts)) };
};
const alone = ((256 * 2 ** 20 * 8) / 1e9) * 1000; // ms for 256 MiB at 1 Gbit/s

describe('plan show estimate', () => {
  it('loads plans the spec schema does not know yet (groups, after, sync, boot, shutdown)', () => {
    const { graph } = loadPlan(specFile('{kind: groups, groups: [[a1, b1], [a2, b2]], sync: [[a1, b1]], boot: true, shutdown: [r1-h1]}'));
    expect(graph.actions.map((a) => a.id)).toEqual([
      'power-on:r2-h1',
      'migrate:a1',
      'migrate:a2',
      'power-off:r1-h1',
      'power-on:r2-h2',
      'migrate:b1',
      'migrate:b2',
    ]);
  });

  it('names the file and path of a bad plan', () => {
    expect(() => loadPlan(specFile('{kind: parallel, after: [{vm: a1, after: zz}]}', 'bad.yaml'))).toThrow(
      `${join(dir, 'bad.yaml')}: migration.plan.after[0].after: unknown vm 'zz'`,
    );
    expect(() => loadPlan(specFile('{kind: capped, k: 0}', 'bad.yaml'))).toThrow(`${join(dir, 'bad.yaml')}: migration.plan.k: expected`);
  });

  it('sequential: each migration alone at the interlink rate', () => {
    const { schedule } = estimate('{kind: sequential}');
    for (const i of schedule.items) expect(i.end - i.start).toBeCloseTo(alone, 3);
    expect(schedule.completionMs).toBeCloseTo(4 * alone, 3);
  });

  it('parallel: the four share the interlink, each ~4x longer, completion as sequential', () => {
    const { schedule } = estimate('{kind: parallel}');
    for (const i of schedule.items) expect((i.end - i.start) / alone).toBeCloseTo(4, 3);
    expect(schedule.completionMs).toBeCloseTo(4 * alone, 3);
  });

  it('opposite directions of a link are separate resources', () => {
    const { spec } = parseSpecText('name: x\ntestbed:\n  racks: [{name: r1, hosts: 1}, {name: r2, hosts: 1}]\n', 'x.yaml');
    const topo = buildTopology(spec.testbed, 'x');
    expect(transferResources(topo, 'r1-h1', 'r2-h1')).toEqual(['r1-h1/mig up', 'r1/up/mig up', 'r2/up/mig down', 'r2-h1/mig down']);
    expect(transferResources(topo, 'r2-h1', 'r1-h1')).toEqual(['r2-h1/mig up', 'r2/up/mig up', 'r1/up/mig down', 'r1-h1/mig down']);
  });

  it('prints the list in start order and a Gantt chart whose bars match the schedule', () => {
    const { graph, schedule } = estimate('{kind: per_server, k: 1, boot: true, shutdown: true}');
    const list = formatPlanList(graph, schedule).split('\n');
    expect(list[0]).toMatch(/^#\s+action\s+start\s+end\s+duration\s+concurrent\s+waits for$/);
    expect(list[1]).toMatch(/^1\s+power-on r2-h1\s+0\.0s\s+30\.0s\s+30\.0s\s+-\s+-$/);
    // per_server 1 from two sources: two migrations at once share the interlink
    expect(list[3]).toMatch(/^3\s+migrate a1 r1-h1 -> r2-h1\s+30\.0s\s+34\.3s\s+4\.3s\s+2\s+power-on r2-h1 \(boot\)$/);
    expect(list.at(-1)).toMatch(/power-off r1-h2 .* b1, b2 \(last out\)$/);
    const gantt = formatGantt(schedule, 40).split('\n');
    expect(gantt).toHaveLength(graph.actions.length + 2);
    const bar = (label: string) => gantt.find((l) => l.startsWith(label))!.split('|')[1];
    expect(bar('power-on r2-h1')).toMatch(/^\++ +$/);
    expect(bar('power-off r1-h1')).toMatch(/^ +-+$/);
    const mig = bar('migrate a1');
    expect(mig.length).toBe(40);
    expect(mig.indexOf('#')).toBe(bar('power-on r2-h1').lastIndexOf('+') + 1);
  });
});
