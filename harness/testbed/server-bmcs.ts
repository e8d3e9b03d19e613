/**
 * The emulated cluster's BMCs: one ipmi_sim per server on its management
 * address (UDP 623, lanplus), its power sensor fed by the power model of that
 * server (its QEMUs' CPU, its NICs' traffic), like a real server's BMC
 * reports what the server draws. It runs as its own process for as long as
 * the testbed is up, because runs come and go (`testbed up --servers` starts
 * it, `testbed down` ends it by PID); an ssh-driver run polls these BMCs from
 * the controller knowing nothing of how they are fed.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { errorMessage } from '../util/errors.ts';
import { HostPowerModel } from '../power/host-power.ts';
import { DEFAULT_POWER_MODEL } from '../power/power-model.ts';
import { startSimBmc, type SimBmc } from '../power/sim-bmc.ts';
import { nicCountersVia, qemuPidsInNetns } from '../power/testbed-power.ts';
import type { ServersState } from './servers-plan.ts';

/** The BMC login of an emulated cluster: one user and a fresh password per testbed (secrets file, mode 0600). */
export const SERVER_BMC_USER = 'mbadmin';
export const SERVER_BMC_SENSOR = 'Power';

export function bmcSecretsPath(s: Pick<ServersState, 'dir'>): string {
  return join(s.dir, 'bmc-secrets.yaml');
}
export function bmcReadyPath(s: Pick<ServersState, 'dir'>): string {
  return join(s.dir, 'bmcs.ready');
}

/** Starts every server's BMC and feeds it until SIGTERM/SIGINT; writes the ready file (ipmi_sim PIDs) once all listen. */
export async function runServerBmcs(s: ServersState): Promise<void> {
  const secrets = parse(readFileSync(bmcSecretsPath(s), 'utf8')) as { default: { user: string; password: string } };
  const bmcs: SimBmc[] = [];
  const models: HostPowerModel[] = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const m of models) m.stop();
    await Promise.all(bmcs.map((b) => b.stop().catch(() => undefined)));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  try {
    for (const v of s.servers) {
      const dir = join(s.dir, v.name, 'bmc');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const bmc = await startSimBmc({
        host: v.name,
        address: v.address,
        port: 623,
        credentials: secrets.default,
        dir,
        netns: v.ns,
        sensorName: SERVER_BMC_SENSOR,
        initialWatts: DEFAULT_POWER_MODEL.idleW,
      });
      bmcs.push(bmc);
      const ino = statSync(`/run/netns/${v.ns}`).ino;
      const nics = ['mb-data', ...(v.migIp ? ['mb-mig'] : [])];
      const model = new HostPowerModel(bmc, { qemuPids: () => qemuPidsInNetns(ino), nicCounters: () => nicCountersVia(bmc.pid, nics) });
      await model.start();
      models.push(model);
    }
  } catch (e) {
    console.error(`emulated BMCs: ${errorMessage(e)}`);
    await stop();
    return;
  }
  writeFileAtomic(bmcReadyPath(s), JSON.stringify(Object.fromEntries(bmcs.map((b) => [b.spec.host, b.pid]))));
  console.error(`emulated BMCs ready: ${bmcs.map((b) => `${b.spec.host} ${b.spec.address}:623`).join(', ')}`);
  await new Promise(() => undefined); // until a signal
}
