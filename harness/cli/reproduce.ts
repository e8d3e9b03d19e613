import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseDocument } from 'yaml';
import { runExperiment } from '../experiment/runner.ts';
import { counts } from '../experiment/campaign-state.ts';
import { parseSpecText } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { checkExperiment } from '../experiment/treatments.ts';
import { summaryTable } from '../experiment/summary.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { Interrupted } from '../util/signals.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import { loadRunDir } from '../../analysis/rundir.ts';
import { writeReport } from '../../analysis/report/write.ts';
import { findStudy, STUDIES, type Study, type StudySpec } from '../../analysis/reproduce/studies.ts';
import { loadStudy } from '../../analysis/reproduce/load.ts';
import { findingsFile, findingsTable, writeFindings } from '../../analysis/reproduce/output.ts';

/**
 * `migbench reproduce <study>`: runs a seed study's specs (experiments/<study>/)
 * one after the other into one study directory, writes each run's report, then
 * evaluates the paper's findings on the runs (findings.json, findings.md) and
 * prints them. `--quick` replaces factor levels and repetitions as the study
 * says; `--from <study dir>` only evaluates runs made before.
 */
interface ReproduceArgs {
  study?: string;
  list: boolean;
  quick: boolean;
  out: string;
  from?: string;
  'testbed-id'?: string;
}

export const EXPERIMENTS_DIR = join(PACKAGE_ROOT, 'experiments');

export function studyNames(): string {
  return STUDIES.map((s) => s.name).join(', ');
}

export function resolveStudy(name: string | undefined): Study {
  if (!name) throw new UserError(`name a study (${studyNames()}) or pass --list`);
  const st = findStudy(name);
  if (!st) throw new UserError(`unknown study '${name}'; the studies are: ${studyNames()} (migbench reproduce --list)`);
  return st;
}

export function listText(): string {
  const lines = STUDIES.map(
    (s) =>
      `${s.name.padEnd(18)} seed ${s.seed}  ~${s.minutes.full} min (--quick ~${s.minutes.quick} min)  ${s.title}\n` +
      `${' '.repeat(29)}specs: ${s.specs.map((x) => `experiments/${s.name}/${x.file}`).join(', ')}`,
  );
  return lines.join('\n');
}

/**
 * The spec text a study runs: the shipped spec with --quick's factors and
 * repetitions, and a testbed id when given. Comments and the rest are kept.
 */
export function derivedSpecText(text: string, spec: Pick<StudySpec, 'quick'>, o: { quick: boolean; testbedId?: string }): string {
  const doc = parseDocument(text);
  if (o.quick) {
    for (const [path, levels] of Object.entries(spec.quick.factors ?? {}))
      doc.setIn(['factors', path], doc.createNode(levels, { flow: true }));
    if (spec.quick.repetitions !== undefined) doc.setIn(['repetitions'], spec.quick.repetitions);
  }
  if (o.testbedId) doc.setIn(['testbed', 'id'], o.testbedId);
  return doc.toString({ lineWidth: 0 });
}

/** `<out>/<study>[-quick][-N]`: short, because QEMU's QMP socket path inside it must stay under 108 bytes. */
export function studyDir(out: string, study: string, quick: boolean): string {
  const base = resolve(out, `${study}${quick ? '-quick' : ''}`);
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

/** Unix socket paths hold at most 107 bytes. */
const SOCKET_PATH_MAX = 107;

/**
 * The longest QMP socket path a spec's run will use under `dir`
 * (<dir>/<UTC stamp>-<name>/vms/<treatment id>/<vm>.<host>.save.qmp, the saved-guest socket the longest).
 */
export function longestSocketPath(dir: string, spec: Spec): number {
  const hosts = [...spec.vms.map((v) => v.host), ...(spec.migration?.moves ?? []).map((m) => m.to)];
  const host = Math.max(...hosts.map((h) => h.length));
  const vm = Math.max(...spec.vms.map((v) => v.name.length));
  return `${dir}/2026-01-01T00-00-00Z-${spec.name}/vms/t00000000/`.length + vm + 1 + host + '.save.qmp'.length;
}

export const reproduceCommand: CommandModule<object, ReproduceArgs> = {
  command: 'reproduce [study]',
  describe: 'reproduce a seed study: run its specs (experiments/<study>/), write the reports and findings.json, print each finding',
  builder: (y) =>
    y
      .positional('study', { type: 'string', describe: `one of: ${studyNames()}` })
      .option('list', { type: 'boolean', default: false, describe: 'list the studies, their specs and how long they take here' })
      .option('quick', { type: 'boolean', default: false, describe: 'a reduced version (<= ~5 min): every finding, wider uncertainty' })
      .option('out', { type: 'string', default: 'runs', describe: 'parent folder of the study directory' })
      .option('from', { type: 'string', describe: 'evaluate the runs of this study directory again; run nothing' })
      .option('testbed-id', {
        type: 'string',
        describe: "testbed id for every spec of the study (default: each spec's own)",
      }) as Argv<ReproduceArgs>,
  handler: async (a) => {
    if (a.list) {
      console.log(listText());
      return;
    }
    const st = resolveStudy(a.study);
    if (a.from) {
      const dir = resolve(a.from);
      await evaluate(st, dir, a.quick || /-quick$/.test(dir), previousWallS(dir));
      return;
    }
    const t0 = Date.now();
    const dir = studyDir(a.out, st.name, a.quick);
    // every spec written and checked before anything is built
    const texts = st.specs.map((sp) => {
      const text = derivedSpecText(readFileSync(join(EXPERIMENTS_DIR, st.name, sp.file), 'utf8'), sp, {
        quick: a.quick,
        testbedId: a['testbed-id'],
      });
      const spec = parseSpecText(text, join(EXPERIMENTS_DIR, st.name, sp.file)).spec;
      const n = longestSocketPath(dir, spec);
      if (n > SOCKET_PATH_MAX)
        throw new UserError(
          `--out ${a.out}: QEMU's sockets under it would be ${n} bytes long (at most ${SOCKET_PATH_MAX}); choose a shorter --out path (e.g. runs)`,
        );
      return { file: join(dir, 'specs', basename(sp.file)), text };
    });
    mkdirSync(join(dir, 'specs'), { recursive: true });
    const files = texts.map(({ file, text }) => {
      writeFileAtomic(file, text);
      checkExperiment(file);
      return file;
    });
    const log = (l: string) => console.error(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${l}`);
    let failed = false;
    for (const [i, file] of files.entries()) {
      log(`${st.name}: spec ${i + 1}/${files.length} ${basename(file)}`);
      try {
        const res = await runExperiment({ specFile: file, outDir: dir, log });
        if (res.records.length) console.error(summaryTable(res.records));
        if (res.records.some((r) => r.status !== 'completed'))
          log(`${basename(file)}: some migrations did not complete (findings count completed ones)`);
        const c = counts(res.state);
        if (c.failed > 0) {
          failed = true;
          log(`${basename(file)}: ${c.failed} of ${res.state.units.length} unit(s) failed; see ${res.dir}`);
        }
        try {
          await writeReport(loadRunDir(res.dir));
        } catch (e) {
          log(`report of ${res.dir} not written (${errorMessage(e)}); write it with 'migbench report ${res.dir}'`);
        }
      } catch (e) {
        if (e instanceof Interrupted || e instanceof UserError) throw e;
        failed = true;
        log(`${basename(file)} failed: ${errorMessage(e)}; its findings are 'not run'`);
      }
    }
    await evaluate(st, dir, a.quick, (Date.now() - t0) / 1000);
    if (failed) process.exitCode = 1;
  },
};

/** The wall time the study's runs took, from the findings written when they ran: evaluating again takes no run time. */
function previousWallS(dir: string): number | null {
  try {
    const w = (JSON.parse(readFileSync(join(dir, 'findings.json'), 'utf8')) as { wall_s?: unknown }).wall_s;
    return typeof w === 'number' ? w : null;
  } catch {
    return null;
  }
}

async function evaluate(st: Study, dir: string, quick: boolean, wallS: number | null): Promise<void> {
  const data = await loadStudy(dir, st);
  const f = findingsFile({ study: st, quick, dir, data, findings: st.evaluate(data), wallS });
  const w = writeFindings(dir, f);
  console.log(findingsTable(f, Math.max(80, Math.min(process.stdout.columns ?? 110, 160))));
  console.log(`\nstudy directory: ${dir}${wallS !== null ? ` (${(wallS / 60).toFixed(1)} min)` : ''}\nfindings: ${w.json}`);
}
