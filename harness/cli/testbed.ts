import { runServerBmcs } from '../testbed/server-bmcs.ts';
import type { Argv, CommandModule } from 'yargs';
import { downSsh, listSshStates } from '../driver/ssh/session.ts';
import { loadSpec, testbedId } from '../spec/load.ts';
import { formatRate } from '../spec/units.ts';
import { UserError } from '../util/errors.ts';
import { down, listNamespaces, up } from '../testbed/local.ts';
import { formatStep, planUp } from '../testbed/plan.ts';
import { probeTestbed, formatProbeReport } from '../testbed/probe.ts';
import { listStates, loadState } from '../testbed/state.ts';
import { buildTopology, type Constraint, type Topology } from '../testbed/topology.ts';
import { isProcessAlive } from '../util/procs.ts';
import { delayForwarderPath } from '../native/programs.ts';
import { serversDir } from '../testbed/servers.ts';
import { formatServerStep, planServers, serversInventory } from '../testbed/servers-plan.ts';

export function describeConstraint(c: Constraint): string {
  const parts: string[] = [];
  if (c.rateBps) parts.push(formatRate(c.rateBps));
  if (c.delayMs) parts.push(`delay ${c.delayMs} ms${c.jitterMs ? ` ± ${c.jitterMs} ms` : ''}`);
  if (c.lossPct) parts.push(`loss ${c.lossPct} %`);
  return parts.join(', ') || 'unshaped';
}

function topologyFromSpec(file: string, servers = false): { id: string; topology: Topology } {
  const { spec } = loadSpec(file);
  if (spec.testbed.driver !== 'local')
    throw new UserError(`${file}: testbed.driver: only the 'local' driver can be brought up with 'testbed up'`);
  const id = testbedId(spec);
  return { id, topology: buildTopology(spec.testbed, id, { mgmt: !!spec.measure.power || servers }) };
}

/** Resolves "spec file or testbed id" to a testbed id (and, for a spec, the topology it builds). */
function targetOf(target: string | undefined): { id?: string; topology?: Topology } {
  if (!target) return {};
  if (/\.ya?ml$/.test(target)) return topologyFromSpec(target);
  return { id: target };
}

function idOf(target: string | undefined): string | undefined {
  return targetOf(target).id;
}

const upCmd: CommandModule<object, { spec: string; 'dry-run': boolean; servers: boolean }> = {
  command: 'up <spec>',
  describe: 'build the local testbed described in a spec',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'print the commands instead of running them',
      })
      .option('servers', {
        type: 'boolean',
        default: false,
        describe: "make every host an SSH server (own sshd and libvirtd, private /run): an emulated cluster; see 'testbed inventory'",
      }) as Argv<{ spec: string; 'dry-run': boolean; servers: boolean }>,
  handler: async (a) => {
    const { id, topology } = topologyFromSpec(a.spec, a.servers);
    if (a['dry-run']) {
      const plan = planUp(topology, { netem: false, htb: true, nftNetdev: true }, 'mb-delayfwd');
      for (const s of plan.steps) console.log(formatStep(s) + (s.input ? `  <<< ${JSON.stringify(s.input)}` : ''));
      if (a.servers) for (const s of planServers(topology, serversDir(id)).steps) console.log(formatServerStep(s));
      return;
    }
    const isTty = process.stderr.isTTY;
    const t0 = Date.now();
    const state = await up({
      id,
      specFile: a.spec,
      topology,
      delayForwarder: delayForwarderPath,
      servers: a.servers,
      onProgress: (done, total) => {
        if (isTty) process.stderr.write(`\rbuilding testbed '${id}': step ${done}/${total}`);
        else if (done === total || done % 50 === 0) process.stderr.write(`building testbed '${id}': step ${done}/${total}\n`);
      },
    });
    if (isTty) process.stderr.write('\n');
    console.log(
      `testbed '${id}' is up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${topology.hosts.length} hosts in ${topology.racks.length} rack(s), ${state.namespaces.length} namespaces, ${state.processes.length} helper process(es)`,
    );
    console.log(
      `kernel: netem ${state.caps?.netem ? 'yes' : 'no'}, htb ${state.caps?.htb ? 'yes' : 'no'}, nftables netdev ${state.caps?.nftNetdev ? 'yes' : 'no'}`,
    );
    printLinks(state.topology, state.mechanisms);
    if (state.servers) {
      console.log(
        `servers: ${state.servers.servers.map((s) => `${s.name} ${s.address}`).join(', ')} (sshd + libvirtd each; controller ${state.servers.controllerAddr})`,
      );
      console.log(`inventory: migbench testbed inventory ${id}`);
    }
  },
};

function printLinks(topo: Topology, mech: Record<string, { rate: string; delay: string; loss: string }>): void {
  for (const l of topo.links) {
    const m = mech[l.name];
    const how = m ? [m.rate, m.delay, m.loss].filter((x) => x !== 'none').join('+') : '';
    console.log(`  ${l.name.padEnd(16)} ${describeConstraint(l.constraint).padEnd(36)} ${how}`);
  }
}

const downCmd: CommandModule<object, { target?: string; force: boolean }> = {
  command: 'down [target]',
  describe: 'remove a testbed (spec file or id; all testbeds when omitted), also after a crash',
  builder: (y) =>
    y.positional('target', { type: 'string' }).option('force', {
      type: 'boolean',
      default: false,
      describe: "also remove a testbed a running 'migbench run' is using, or (no state file) every namespace carrying the id's prefix",
    }) as Argv<{ target?: string; force: boolean }>,
  handler: async (a) => {
    const { id, topology } = targetOf(a.target);
    // servers of ssh-driver runs that did not end cleanly (crash, kill -9)
    let sshDone = 0;
    for (const sid of id ? [id] : listSshStates().map((s) => s.id)) {
      const r = await downSsh(sid, { force: a.force, log: (l) => process.stderr.write(`${l}\n`) });
      if (!r) continue;
      sshDone++;
      if (r.refused) {
        process.stderr.write(`migbench: ${r.refused}\n`);
        process.exitCode = 2;
      } else console.log(`ssh testbed '${sid}' cleaned on ${r.servers} server(s): guests ended, taps, shaping and run files removed`);
    }
    const results = await down(id, { force: a.force, topology });
    if (results.length === 0 && sshDone === 0) console.log('no testbed to remove');
    for (const r of results) {
      if (r.refused) process.stderr.write(`migbench: ${r.refused}\n`);
      else console.log(`testbed '${r.id}' removed: ${r.namespaces.length} namespaces, ${r.processes} process(es) ended`);
    }
    const claimed = new Set(listStates().flatMap((s) => s.namespaces ?? []));
    const left = (await listNamespaces()).filter((n) => n.startsWith('mb-') && !claimed.has(n));
    if (left.length && !a.target) console.log(`note: namespaces not created by a recorded testbed remain: ${left.join(', ')}`);
    // a refusal is the user's to resolve (stop the run, or --force): exit 2 like any user error
    if (results.some((r) => r.refused)) process.exitCode = 2;
  },
};

const statusCmd: CommandModule = {
  command: 'status',
  describe: 'show the testbeds that are up',
  handler: async () => {
    const states = listStates();
    if (states.length === 0) {
      console.log('no testbed is up');
      return;
    }
    const present = new Set(await listNamespaces());
    for (const s of states) {
      const missing = s.namespaces.filter((n) => !present.has(n));
      const alive = s.processes.filter(isProcessAlive).length;
      console.log(
        `testbed '${s.id}' from ${s.specFile}, created ${s.createdAt}: ${s.complete ? 'up' : 'INCOMPLETE (interrupted up; run testbed down)'}`,
      );
      console.log(
        `  namespaces: ${s.namespaces.length - missing.length}/${s.namespaces.length} present${missing.length ? ` (missing: ${missing.join(', ')})` : ''}; helper processes alive: ${alive}/${s.processes.length}`,
      );
      if (s.topology) {
        for (const h of s.topology.hosts)
          console.log(`  host ${h.name.padEnd(12)} ns ${h.ns.padEnd(22)} data ${h.dataIp}${h.migIp ? `  mig ${h.migIp}` : ''}`);
        if (s.topology.clientNs) console.log(`  client            ns ${s.topology.clientNs.padEnd(22)} data ${s.topology.clientIp}`);
        printLinks(s.topology, s.mechanisms);
      }
    }
  },
};

const probeCmd: CommandModule<object, { target?: string; seconds: number; json: boolean }> = {
  command: 'probe [target]',
  describe: 'measure every shaped path (iperf3 rate, ping delay, UDP loss) against its configuration',
  builder: (y) =>
    y
      .positional('target', { type: 'string' })
      .option('seconds', { type: 'number', default: 4, describe: 'duration of each rate/loss measurement' })
      .option('json', { type: 'boolean', default: false }) as Argv<{ target?: string; seconds: number; json: boolean }>,
  handler: async (a) => {
    const id = idOf(a.target) ?? listStates()[0]?.id;
    const state = id ? loadState(id) : null;
    if (!state || !state.complete)
      throw new UserError(
        id ? `testbed '${id}' is not up; run 'migbench testbed up <spec>'` : "no testbed is up; run 'migbench testbed up <spec>'",
      );
    const report = await probeTestbed(state.topology, {
      seconds: a.seconds,
      onLine: a.json ? undefined : (l) => console.log(l),
    });
    if (a.json) console.log(JSON.stringify(report, null, 2));
    else console.log(formatProbeReport(report));
    if (report.some((r) => r.flagged)) process.exitCode = 1;
  },
};

const inventoryCmd: CommandModule<object, { target?: string; hypervisor: 'libvirt' | 'qemu' }> = {
  command: 'inventory [target]',
  describe: "print the inventory (YAML) of an emulated cluster built with 'testbed up --servers'",
  builder: (y) =>
    y.positional('target', { type: 'string' }).option('hypervisor', {
      choices: ['libvirt', 'qemu'] as const,
      default: 'libvirt' as const,
      describe: 'hypervisor back end written for every host',
    }) as Argv<{ target?: string; hypervisor: 'libvirt' | 'qemu' }>,
  handler: (a) => {
    const id = idOf(a.target) ?? listStates().find((s) => s.servers)?.id;
    const state = id ? loadState(id) : null;
    if (!state || !state.complete) {
      throw new UserError(
        id
          ? `testbed '${id}' is not up; run 'migbench testbed up <spec> --servers'`
          : "no emulated cluster is up; run 'migbench testbed up <spec> --servers'",
      );
    }
    if (!state.servers)
      throw new UserError(
        `testbed '${id}' has no SSH servers; it was built without --servers (run 'migbench testbed down ${id}', then up with --servers)`,
      );
    process.stdout.write(serversInventory(state.id, state.servers, { hypervisor: a.hypervisor }));
  },
};

/** Internal: the emulated cluster's BMC feeder, started by 'testbed up --servers' and ended by 'testbed down'. */
const bmcsDaemonCmd: CommandModule<object, { id: string }> = {
  command: 'bmcs-daemon <id>',
  describe: false,
  builder: (y) => y.positional('id', { type: 'string', demandOption: true }) as Argv<{ id: string }>,
  handler: async (a) => {
    const state = loadState(a.id);
    if (!state?.servers) throw new UserError(`testbed '${a.id}' has no SSH servers`);
    await runServerBmcs(state.servers);
  },
};

export const testbedCommand: CommandModule = {
  command: 'testbed',
  describe: 'build, inspect, probe and remove the local testbed',
  builder: (y) =>
    y
      .command(upCmd)
      .command(downCmd)
      .command(statusCmd)
      .command(probeCmd)
      .command(inventoryCmd)
      .command(bmcsDaemonCmd)
      .demandCommand(1, 'name a testbed command: up, down, status, probe, inventory'),
  handler: () => {},
};
