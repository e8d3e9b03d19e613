import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DERIVED_FIELDS } from '../../test/support/migration-fixture.ts';
import type { FeatureFixture } from '../../test/support/feature-fixture.ts';
import { deriveMigration, type MigrationObservation } from './derive.ts';
import { diskCheck } from './disk.ts';
import { deriveBlock, deriveFeatures } from './features.ts';
import { flagRecord } from './flags.ts';

/** Recorded with test/support/feature-fixture.ts from the e2e runs of test/e2e/features.test.ts (QEMU 10.0, TCG). */
const DIR = join(import.meta.dirname, '../../test/fixtures/features');
const load = (name: string): FeatureFixture => JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as FeatureFixture;
const copy = (o: MigrationObservation): MigrationObservation => structuredClone(o);
const NOISE_MS = 1e-3;

/** Deep equality with float noise allowed on numbers (QMP timestamps to the µs). */
function expectClose(got: unknown, want: unknown, path = ''): void {
  if (typeof want === 'number') {
    expect(got, path).toBeTypeOf('number');
    expect(Math.abs((got as number) - want), `${path}: got ${String(got)}, recorded ${want}`).toBeLessThanOrEqual(NOISE_MS);
  } else if (want && typeof want === 'object') {
    expect(got, path).toBeTypeOf('object');
    const keys = new Set([...Object.keys(want), ...Object.keys(got as object)]);
    for (const k of keys) expectClose((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], `${path}.${k}`);
  } else expect(got, path).toEqual(want);
}

describe('feature and block derivations reproduce what the harness recorded from real migrations', () => {
  const names = readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''));
  it('has a fixture for block migration and each feature', () => {
    expect(names.sort()).toEqual(['autoconverge', 'block', 'multifd', 'postcopy', 'xbzrle']);
  });
  for (const name of names) {
    it(name, () => {
      const f = load(name);
      expectClose(deriveFeatures(f.observation), f.recordedFeatures.features ?? {}, 'features');
      expectClose(f.observation.block ? deriveBlock(f.observation) : null, f.recordedFeatures.block, 'block');
      const d = deriveMigration(f.observation);
      for (const k of DERIVED_FIELDS) expectClose(d[k], f.recorded[k], k);
    });
  }
});

describe('feature evidence rules', () => {
  it('post-copy: the switch, its blackout and the page requests; never reaching postcopy-active is not engaged (and flagged)', () => {
    const o = load('postcopy').observation;
    const p = deriveFeatures(o).postcopy!;
    expect(p.engaged).toBe(true);
    expect(p.switch_after_ms).toBe(o.control.postcopyStartMs! - o.tCmdMs!);
    expect(p.requests).toBe(27);
    const never = copy(o);
    never.events = never.events.filter((e) => e.data.status !== 'postcopy-active');
    for (const q of never.queries) if (q.answer.status === 'postcopy-active') q.answer.status = 'active';
    const n = deriveFeatures(never).postcopy!;
    expect(n).toMatchObject({ engaged: false, t_postcopy: null, blackout_ms: null });
    const flags = flagRecord({ status: 'completed', features: { postcopy: n } });
    expect(flags).toEqual([{ code: 'not_engaged', reason: 'postcopy was requested but the hypervisor never showed it engaging' }]);
  });

  it('multifd: bytes over the channels engage it; zero bytes is not engaged; no field at all is no evidence', () => {
    const o = load('multifd').observation;
    expect(deriveFeatures(o).multifd).toMatchObject({ engaged: true, channels: 4 });
    const zero = copy(o);
    for (const q of zero.queries) if (q.answer.ram) q.answer.ram['multifd-bytes'] = 0;
    expect(deriveFeatures(zero).multifd).toMatchObject({ engaged: false, multifd_bytes: 0 });
    const old = copy(o);
    for (const q of old.queries) if (q.answer.ram) delete q.answer.ram['multifd-bytes'];
    expect(deriveFeatures(old).multifd).toMatchObject({ engaged: null, multifd_bytes: null });
    expect(flagRecord({ status: 'completed', features: deriveFeatures(old) })).toEqual([]);
  });

  it('xbzrle: encoded pages engage it; a cache that never encoded is not engaged', () => {
    const o = load('xbzrle').observation;
    const x = deriveFeatures(o).xbzrle!;
    expect(x.engaged).toBe(true);
    expect(x.bytes!).toBeLessThan(x.pages! * 4096);
    const none = copy(o);
    for (const q of none.queries) if (q.answer['xbzrle-cache']) q.answer['xbzrle-cache'].pages = 0;
    expect(deriveFeatures(none).xbzrle).toMatchObject({ engaged: false, pages: 0 });
  });

  it('auto-converge: the throttle series keeps each change; never throttled is not engaged', () => {
    const o = load('autoconverge').observation;
    const a = deriveFeatures(o).auto_converge!;
    expect(a.throttle.map((t) => t[1])).toEqual([50, 70, 90]);
    const none = copy(o);
    for (const q of none.queries) delete q.answer['cpu-throttle-percentage'];
    expect(deriveFeatures(none).auto_converge).toEqual({ requested: true, engaged: false, max_throttle_pct: null, throttle: [] });
  });

  it('nothing requested, nothing reported (observations recorded before features were)', () => {
    const o = copy(load('multifd').observation);
    delete o.config.features;
    expect(deriveFeatures(o)).toEqual({});
  });
});

describe('block migration rules', () => {
  it('phases: mirror start -> READY (bulk copy), the RAM migration inside, cancel -> COMPLETED (switchover)', () => {
    const o = load('block').observation;
    const b = deriveBlock(o)!;
    expect(b.disk_bytes).toBe(64 * 2 ** 20);
    expect(b.mirror_ms! + b.ready_to_migrate_ms!).toBeCloseTo(o.tCmdMs! - o.block!.mirrorStartMs!, 3);
    expect(b.total_ms!).toBeGreaterThan(b.mirror_ms! + deriveMigration(o).total_ms!);
  });

  it('a BLOCK_JOB_COMPLETED before the cancel is not the switchover; without READY there is no copy time', () => {
    const o = copy(load('block').observation);
    o.block!.cancelMs = null;
    o.events = o.events.filter((e) => e.event !== 'BLOCK_JOB_READY');
    const b = deriveBlock(o)!;
    expect(b).toMatchObject({ t_mirror_done: null, switchover_ms: null, total_ms: null, mirror_ms: null, t_mirror_ready: null });
    // bytes then come from the last query-block-jobs answer
    expect(b.disk_bytes).toBe(o.block!.jobs.at(-1)!.job!.len);
  });

  it('the disk check: equal checksums verify, different ones do not, a missing one is unchecked', () => {
    const w = { bytes: 8, sha256: 'a'.repeat(64) };
    expect(diskCheck(w, w).verified).toBe(true);
    expect(diskCheck(w, { bytes: 8, sha256: 'b'.repeat(64) })).toMatchObject({ verified: false, sha256_after: 'b'.repeat(64) });
    expect(diskCheck(null, w).verified).toBeNull();
  });
});
