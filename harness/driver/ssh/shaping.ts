/**
 * Shaping on the servers' real NICs over SSH. The spec's per-link constraints
 * (topology.ts: a host's data link `<host>` and migration link `<host>/mig`,
 * each from `host_nic` and `testbed.shaping`) become tc commands by the same
 * pure generation as the local testbed (testbed/shaping.ts shapingSteps):
 *
 *   local link:  host NIC a --(up: egress of a)--> switch port b --(down: egress of b)--> a
 *   server NIC:  up = egress of the NIC; down = its ingress, redirected to an IFB
 *                device (`mbi-<nic>`) whose egress is shaped the same way.
 *
 * So a path between two servers crosses the same constraints as between two
 * namespaces of the local testbed (rate both ways, delay/loss once per link
 * and direction). Switch-side links (rack uplinks, the aggregation, the client
 * link) cannot be shaped from a server: they are returned as `skipped`.
 * Delay, jitter and loss need netem on the server (mb-delayfwd is a
 * local-testbed device); a server without it is a UserError naming it.
 *
 * What is applied is written to a record file on the controller before the
 * first command runs, so teardownShaping() after Ctrl-C, a crash or kill -9
 * removes exactly those qdiscs and IFB devices, and nothing else.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { InventoryHost } from '../../inventory/load.ts';
import { mapLimit, type SshPool } from '../../ssh/pool.ts';
import { shJoin } from '../../ssh/quote.ts';
import type { SshTarget } from '../../ssh/types.ts';
import { shapingSteps } from '../../testbed/shaping.ts';
import { isShaped, type Constraint, type Link, type Topology } from '../../testbed/topology.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';
import { UserError, errorMessage } from '../../util/errors.ts';

/** What the preflight qdisc probe found on a server (ssh/probes.ts QdiscFacts.available). */
export interface HostShapingCaps {
  htb: boolean | null;
  netem: boolean | null;
}

/** One remote command; `ok` lists stderr patterns that mean "already in that state" (idempotent re-runs). */
export interface RemoteStep {
  argv: string[];
  ok?: RegExp;
}

/** One shaped NIC of one server. */
export interface ShapedNic {
  /** The spec link (`r1-h1`, `r1-h1/mig`). */
  link: string;
  iface: string;
  /** IFB device carrying the NIC's ingress (the link's "down" direction); null when only egress is shaped. */
  ifb: string | null;
  constraint: Constraint;
  apply: RemoteStep[];
  remove: RemoteStep[];
}

export interface HostShaping {
  /** Inventory name. */
  host: string;
  specHost: string;
  ssh: SshTarget;
  nics: ShapedNic[];
}

export interface ShapingPlan {
  hosts: HostShaping[];
  /** Constrained links no server NIC carries (rack uplinks, aggregation, client link): not applied. */
  skipped: { link: string; reason: string }[];
}

/** What the record file holds: enough to remove everything with nothing but an SSH pool. */
export interface ShapingRecord {
  version: 1;
  /** ISO time the record was written (before applying). */
  written: string;
  /** Per NIC only names: the removal commands are derived from them (removalSteps). */
  hosts: { host: string; ssh: SshTarget; nics: { link: string; iface: string; ifb: string | null }[] }[];
}

const IFNAMSIZ = 15;

/** The IFB device for a NIC: `mbi-<nic>`, or `mbi-<hash>` when that is too long. */
export function ifbName(iface: string): string {
  const plain = `mbi-${iface}`;
  return plain.length <= IFNAMSIZ ? plain : `mbi-${createHash('sha256').update(iface).digest('hex').slice(0, 10)}`;
}

const GONE =
  /No such file|Cannot find device|Cannot find specified qdisc|Cannot delete qdisc with handle of zero|Invalid handle|not exist/i;

/** Removal of what shapeNic applies, in reverse: deleting the root qdisc gives the device its kernel default back. */
export function removalSteps(iface: string, ifb: string | null): RemoteStep[] {
  const steps: RemoteStep[] = [{ argv: ['tc', 'qdisc', 'del', 'dev', iface, 'root'], ok: GONE }];
  if (ifb) {
    steps.push({ argv: ['tc', 'qdisc', 'del', 'dev', iface, 'ingress'], ok: GONE });
    steps.push({ argv: ['ip', 'link', 'del', ifb], ok: GONE });
  }
  return steps;
}

/**
 * The commands shaping one NIC with a link's constraint (both directions). Pure. Each qdisc tree
 * is deleted first (htb cannot be `replace`d onto itself), so applying the same plan again (a
 * resumed run) ends in the same state and fails nowhere.
 */
export function shapeNic(link: Link, iface: string): ShapedNic {
  const c = link.constraint;
  const ifb = ifbName(iface);
  // the local generation on a NIC/IFB pair: its a side is the NIC's egress, its b side the IFB's
  const pair: Link = { ...link, a: { ns: '', ifname: iface }, b: { ns: '', ifname: ifb } };
  const steps = shapingSteps(pair, { netem: true, htb: true, nftNetdev: false }, '');
  const up = steps.filter((s) => s.argv.includes(iface)).map((s) => ({ argv: s.argv }));
  const down = steps.filter((s) => s.argv.includes(ifb)).map((s) => ({ argv: s.argv }));
  if (up.length + down.length !== steps.length)
    throw new Error(`unexpected shaping steps for ${link.name}: ${steps.map((s) => s.argv.join(' ')).join('; ')}`);
  const exists = /File exists/i;
  const fresh = (dev: string, where: 'root' | 'ingress'): RemoteStep => ({ argv: ['tc', 'qdisc', 'del', 'dev', dev, where], ok: GONE });
  const apply: RemoteStep[] = [
    fresh(iface, 'root'),
    ...up,
    { argv: ['ip', 'link', 'add', ifb, 'type', 'ifb'], ok: exists },
    { argv: ['ip', 'link', 'set', ifb, 'up'] },
    // a fresh ingress qdisc: its filter is ours alone (a re-run would otherwise add a second one)
    fresh(iface, 'ingress'),
    { argv: ['tc', 'qdisc', 'add', 'dev', iface, 'handle', 'ffff:', 'ingress'] },
    {
      argv: [
        'tc',
        'filter',
        'add',
        'dev',
        iface,
        'parent',
        'ffff:',
        'protocol',
        'all',
        'prio',
        '1',
        'u32',
        'match',
        'u32',
        '0',
        '0',
        'action',
        'mirred',
        'egress',
        'redirect',
        'dev',
        ifb,
      ],
    },
    fresh(ifb, 'root'),
    ...down,
  ];
  return { link: link.name, iface, ifb, constraint: c, apply, remove: removalSteps(iface, ifb) };
}

const describeC = (c: Constraint) =>
  [c.delayMs ? `delay ${c.delayMs} ms` : '', c.jitterMs ? `jitter ${c.jitterMs} ms` : '', c.lossPct ? `loss ${c.lossPct} %` : '']
    .filter(Boolean)
    .join(', ');

/**
 * Pure: the remote shaping of every server. `hosts` maps spec host names to
 * inventory hosts (mapping.ts), `caps` gives each inventory host's qdiscs
 * (from preflight). Throws a UserError naming host and what is missing.
 */
export function planRemoteShaping(
  topo: Topology,
  hosts: ReadonlyMap<string, InventoryHost>,
  caps: ReadonlyMap<string, HostShapingCaps>,
): ShapingPlan {
  const out: HostShaping[] = [];
  const skipped: ShapingPlan['skipped'] = [];
  const problems: string[] = [];
  const hostOf = new Map<string, { spec: string; network: 'data' | 'mig' }>();
  for (const h of topo.hosts) {
    hostOf.set(h.name, { spec: h.name, network: 'data' });
    hostOf.set(`${h.name}/mig`, { spec: h.name, network: 'mig' });
  }
  for (const link of topo.links) {
    if (!isShaped(link.constraint) || link.kind === 'mgmt') continue;
    const at = link.kind === 'host' ? hostOf.get(link.name) : undefined;
    if (!at) {
      skipped.push({
        link: link.name,
        reason: `'${link.name}' is a switch-side link (${link.kind}); the ssh driver shapes only the servers' NICs, the cluster's own network is what it is`,
      });
      continue;
    }
    const inv = hosts.get(at.spec);
    if (!inv) throw new UserError(`spec host ${at.spec} has no server in the inventory`);
    const nic = at.network === 'data' ? inv.data : inv.migration;
    const field = at.network === 'data' ? 'data.iface' : 'migration.iface';
    if (!nic.iface) {
      problems.push(`${inv.where}: the spec shapes link ${link.name} but server ${inv.name} has no ${field}; give the interface name`);
      continue;
    }
    const c = link.constraint;
    const cap = caps.get(inv.name);
    if (c.rateBps && cap?.htb !== true) {
      problems.push(
        `host ${inv.name}: link ${link.name} has a rate but the kernel there has no htb qdisc (CONFIG_NET_SCH_HTB)${cap ? '' : ' (not probed)'}`,
      );
    }
    if ((c.delayMs || c.jitterMs || c.lossPct) && cap?.netem !== true) {
      problems.push(
        `host ${inv.name}: link ${link.name} has ${describeC(c)} but the kernel there has no netem qdisc (load sch_netem, CONFIG_NET_SCH_NETEM); ` +
          'mb-delayfwd exists only in the local testbed: shape rate only on this cluster, or use servers with netem',
      );
    }
    let hs = out.find((x) => x.host === inv.name);
    if (!hs) out.push((hs = { host: inv.name, specHost: at.spec, ssh: inv.ssh, nics: [] }));
    const same = hs.nics.find((n) => n.iface === nic.iface);
    if (same) {
      if (JSON.stringify(same.constraint) !== JSON.stringify(c)) {
        problems.push(
          `host ${inv.name}: links ${same.link} and ${link.name} both go through ${nic.iface} with different constraints; ` +
            'give the migration network its own NIC (migration.iface) or the same constraint to both',
        );
      }
      continue;
    }
    hs.nics.push(shapeNic(link, nic.iface));
  }
  if (problems.length) {
    throw new UserError(problems.length === 1 ? `shaping: ${problems[0]}` : `shaping is not possible:\n  ${problems.join('\n  ')}`);
  }
  return { hosts: out, skipped };
}

/** One line per command, for `--dry-run`, the manifest and the unit test. */
export function formatPlan(plan: ShapingPlan): string[] {
  return plan.hosts.flatMap((h) => h.nics.flatMap((n) => n.apply.map((s) => `${h.host}: ${shJoin(s.argv)}`)));
}

async function runSteps(pool: SshPool, ssh: SshTarget, steps: readonly RemoteStep[], what: string): Promise<void> {
  const conn = pool.connection(ssh);
  for (const s of steps) {
    const r = await conn.exec(s.argv, { label: `${what}: ${s.argv.join(' ')}`, timeoutMs: 30_000 });
    if (r.code === 0 || (s.ok && s.ok.test(r.stderr))) continue;
    throw conn.error(`${what}: '${s.argv.join(' ')}' failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 300)}`);
  }
}

function readRecord(file: string): ShapingRecord | null {
  if (!existsSync(file)) return null;
  const doc = JSON.parse(readFileSync(file, 'utf8')) as ShapingRecord;
  if (doc.version !== 1 || !Array.isArray(doc.hosts)) throw new UserError(`${file}: not a migbench shaping record`);
  return doc;
}

/**
 * Records the plan in `recordFile` (merged with what an earlier apply left
 * there), then applies it on every server in parallel. On failure the record
 * stays: the caller's cleanup runs teardownShaping(recordFile, pool).
 */
export async function applyShaping(plan: ShapingPlan, pool: SshPool, recordFile: string, concurrency = 32): Promise<void> {
  const prev = readRecord(recordFile);
  const rec: ShapingRecord = { version: 1, written: new Date().toISOString(), hosts: prev ? [...prev.hosts] : [] };
  for (const h of plan.hosts) {
    let r = rec.hosts.find((x) => x.host === h.host);
    if (!r) rec.hosts.push((r = { host: h.host, ssh: h.ssh, nics: [] }));
    for (const n of h.nics) {
      if (!r.nics.some((x) => x.iface === n.iface)) r.nics.push({ link: n.link, iface: n.iface, ifb: n.ifb });
    }
  }
  writeJsonAtomic(recordFile, rec); // before the first command: a crash from here on is undone by the record
  const res = await mapLimit(plan.hosts, concurrency, async (h) => {
    for (const n of h.nics) await runSteps(pool, h.ssh, n.apply, `shaping ${n.link} on ${n.iface}`);
  });
  const failed = res.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
  if (failed.length)
    throw new UserError(failed.length === 1 ? failed[0] : `shaping failed on ${failed.length} hosts:\n  ${failed.join('\n  ')}`);
}

/**
 * Removes exactly what `recordFile` says was applied, on every recorded server in
 * parallel; deletes the record when all is gone. A server that cannot be reached
 * stays in the record (a later teardown retries it) and is named in the error.
 */
export async function teardownShaping(recordFile: string, pool: SshPool, concurrency = 32): Promise<{ hosts: string[] }> {
  const rec = readRecord(recordFile);
  if (!rec) return { hosts: [] };
  const res = await mapLimit(rec.hosts, concurrency, async (h) => {
    for (const n of h.nics) await runSteps(pool, h.ssh, removalSteps(n.iface, n.ifb), `removing shaping of ${n.link} from ${n.iface}`);
  });
  const left = rec.hosts.filter((_, i) => res[i].status === 'rejected');
  if (left.length) {
    writeJsonAtomic(recordFile, { ...rec, hosts: left });
    const why = res.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
    throw new UserError(`shaping left on ${left.length} host(s) (recorded in ${recordFile}; run teardown again):\n  ${why.join('\n  ')}`);
  }
  rmSync(recordFile, { force: true });
  return { hosts: rec.hosts.map((h) => h.host) };
}
