import { testbedId } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { delayForwarderPath } from '../native/programs.ts';
import { down, inUseByLiveRun, ownerAlive, up } from '../testbed/local.ts';
import type { Mechanisms } from '../testbed/shaping.ts';
import { loadState, type TestbedState } from '../testbed/state.ts';
import { buildTopology } from '../testbed/topology.ts';
import { UserError } from '../util/errors.ts';
import { LocalDriver } from './local.ts';
import type { DriverSession, PowerSpec, PowerStart } from './session.ts';
import type { TestbedDriver } from './types.ts';
import { TestbedPower } from '../power/testbed-power.ts';
import { stateDir } from '../util/paths.ts';
import { join } from 'node:path';

/**
 * The local testbed for a campaign: built for the first treatment, reused
 * while the topology stays the same, rebuilt when it changes, removed at the
 * end when the run built it (a testbed that was already up stays up).
 */
export class LocalSession implements DriverSession {
  private current: { state: TestbedState; ours: boolean } | null = null;

  constructor(
    private readonly specFile: string,
    private readonly runDir: string,
    private readonly log: (l: string) => void,
  ) {}

  get state(): TestbedState | null {
    return this.current?.state ?? null;
  }

  async prepare(spec: Spec, beforeChange: () => Promise<void>): Promise<LocalDriver> {
    this.current = await this.ensure(spec, this.current?.ours ? this.current.state : null, beforeChange);
    return new LocalDriver(this.current.state);
  }

  mechanisms(): Record<string, Mechanisms> {
    return this.current?.state.mechanisms ?? {};
  }

  facts(): Record<string, unknown> {
    return {};
  }

  powerUnavailable(): null {
    return null;
  }

  /** One ipmi_sim BMC per host fed by the power model, polled from the client namespace. */
  async startPower(driver: TestbedDriver, power: PowerSpec, o: PowerStart): Promise<TestbedPower> {
    o.log(`starting ${driver.topology.hosts.length} BMCs (ipmi_sim) and the power poller`);
    return TestbedPower.start(driver.topology, power, { dir: join(stateDir(), `${driver.id}-bmc`), ...o });
  }

  async close(): Promise<void> {
    const c = this.current;
    this.current = null;
    if (c?.ours) await down(c.state.id);
  }

  /** Brings the treatment's testbed up, reusing one already up with the same topology. */
  private async ensure(
    spec: Spec,
    current: TestbedState | null,
    beforeDown: () => Promise<void>,
  ): Promise<{ state: TestbedState; ours: boolean }> {
    const { log } = this;
    const id = testbedId(spec);
    const topology = buildTopology(spec.testbed, id, { mgmt: !!spec.measure.power });
    const want = JSON.stringify(topology);
    if (current && JSON.stringify(current.topology) === want) return { state: current, ours: true };
    if (current) {
      await beforeDown();
      await down(current.id);
    }
    const existing = loadState(id);
    if (existing && inUseByLiveRun(existing)) {
      throw new UserError(
        `testbed '${id}' is in use by another running 'migbench run' (pid ${existing.upPid}, ${existing.ownerRun}); wait for it, or give this spec another testbed.id`,
      );
    }
    if (existing?.ownerRun && !ownerAlive(existing)) {
      // left behind by a run that was killed (kill -9, crash): its guests may still be running there
      log(`removing testbed '${id}' left by a run that ended abnormally (${existing.ownerRun})`);
      await down(id);
      return this.ensure(spec, null, beforeDown);
    }
    if (existing && existing.complete && JSON.stringify(existing.topology) === want) {
      log(`using testbed '${id}' that is already up`);
      return { state: existing, ours: false };
    }
    if (existing && existing.complete)
      throw new UserError(`testbed '${id}' is up with a different topology; run 'migbench testbed down ${id}' first`);
    // a half-built testbed of a killed run: remove it and build afresh
    if (existing) await down(id);
    log(`building testbed '${id}' (${topology.hosts.length} hosts)`);
    return {
      state: await up({ id, specFile: this.specFile, topology, delayForwarder: delayForwarderPath, ownerRun: this.runDir }),
      ours: true,
    };
  }
}
