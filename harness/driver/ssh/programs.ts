/**
 * The harness's own programs on a remote host (the inventory's client): the
 * mb-probe binary and the HTTP client agent, built on the controller and
 * uploaded once per content hash (SFTP). No agent of ours is installed: the
 * probe is a static binary in the user's cache directory, the HTTP agent is
 * one plain JavaScript file run by the host's own Node.js.
 *
 * Checks, each failing with a UserError naming the host: the host's CPU
 * architecture equals the controller's (the probe is compiled here), and Node.js
 * >= 18 is on the host's PATH when HTTP clients must run there.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { machine } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SshConnection } from '../../ssh/connection.ts';
import { describeTarget } from '../../ssh/types.ts';
import { compileC } from '../../util/compile.ts';
import { UserError } from '../../util/errors.ts';
import { cacheDir, PACKAGE_ROOT } from '../../util/paths.ts';

export type RemoteProgram = 'mb-probe' | 'mb-http-agent';

/** Where uploads go on the host, under the login user's home. */
export const REMOTE_BIN_DIR = '.cache/migbench/bin';
/** The HTTP agent uses only node:http and ES2022: any maintained Node.js runs it. */
export const MIN_NODE_MAJOR = 18;

const NATIVE = fileURLToPath(new URL('../../native/', import.meta.url));
const AGENT_SOURCE = join(PACKAGE_ROOT, 'harness', 'workloads', 'http-agent.ts');

/**
 * mb-probe linked statically, so the host's C library version does not matter
 * (same sources as harness/native/programs.ts probePath()).
 */
export function staticProbePath(): Promise<string> {
  return compileC({
    name: 'mb-probe-static',
    sources: [`${NATIVE}probe.c`],
    headers: [`${NATIVE}common.h`],
    flags: ['-pthread'],
    static: true,
  });
}

/**
 * The HTTP agent as one ES module (types stripped by esbuild, which tsx ships
 * with), cached by the source's hash.
 */
export async function agentScriptPath(): Promise<string> {
  const src = readFileSync(AGENT_SOURCE, 'utf8');
  const h = createHash('sha256').update(src).digest('hex').slice(0, 12);
  const dir = cacheDir('bin');
  const out = join(dir, `mb-http-agent-${h}.mjs`);
  if (existsSync(out)) return out;
  // resolved from tsx's own location: esbuild is its dependency, not ours
  const req = createRequire(createRequire(import.meta.url).resolve('tsx'));
  const esbuild = req('esbuild') as typeof import('esbuild');
  const js = await esbuild.transform(src, { loader: 'ts', format: 'esm', target: `node${MIN_NODE_MAJOR}`, sourcefile: AGENT_SOURCE });
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.tmp${process.pid}`;
  writeFileSync(tmp, js.code);
  renameSync(tmp, out);
  return out;
}

/** Pure: `uname -m` of a host against the controller's; a message when they differ. */
export function archMismatch(host: string, remote: string, local: string = machine()): string | null {
  const norm = (m: string) => (m === 'amd64' ? 'x86_64' : m === 'arm64' ? 'aarch64' : m);
  if (norm(remote.trim()) === norm(local)) return null;
  return (
    `host ${host} is ${remote.trim() || 'of unknown architecture'} but the controller is ${local}: mb-probe is compiled on the controller; ` +
    'run migbench from a controller of the same architecture, or name a client host of the same architecture in the inventory (client:)'
  );
}

/** Pure: `node --version` output (and exit) -> null when usable, else what to do. */
export function nodeProblem(host: string, out: string, code: number | null): string | null {
  const m = /^v(\d+)\./.exec(out.trim());
  if (code === 0 && m && Number(m[1]) >= MIN_NODE_MAJOR) return null;
  const seen = code === 127 || !m ? 'no node on its PATH' : `node ${out.trim()}`;
  return (
    `host ${host} runs the HTTP client agent (probe/rate clients) but has ${seen}; ` +
    `install Node.js >= ${MIN_NODE_MAJOR} there (e.g. apt-get install nodejs), or drop those clients from the spec`
  );
}

export interface ClientHostNeeds {
  /** mb-probe (the downtime probe). */
  probe?: boolean;
  /** The HTTP agent (probe/rate clients). */
  agent?: boolean;
  /** httperf clients. */
  httperf?: boolean;
}

/**
 * Read-only preflight of the client host: architecture, node, httperf. Throws one
 * UserError listing every problem; changes nothing on the host.
 */
export async function checkClientHost(conn: SshConnection, needs: ClientHostNeeds): Promise<void> {
  const r = await conn.exec(
    [
      'sh',
      '-c',
      'echo "arch $(uname -m)"; v=$(node --version 2>/dev/null) && echo "node $v" || echo "node missing"; ' +
        'command -v httperf >/dev/null && echo "httperf yes" || echo "httperf no"',
    ],
    { label: 'client host checks', timeoutMs: 30_000 },
  );
  const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(r.stdout)?.[1] ?? '';
  const problems: string[] = [];
  if (needs.probe) {
    const a = archMismatch(conn.name, line('arch'));
    if (a) problems.push(a);
  }
  if (needs.agent) {
    const v = line('node');
    const n = nodeProblem(conn.name, v === 'missing' ? '' : v, v === 'missing' ? 127 : 0);
    if (n) problems.push(n);
  }
  if (needs.httperf && line('httperf') !== 'yes') {
    problems.push(`host ${conn.name} runs httperf clients but has no httperf on its PATH; install it there (apt-get install httperf)`);
  }
  if (problems.length) {
    throw new UserError(
      `client host ${describeTarget(conn.target)}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`,
    );
  }
}

/** One upload per connection and program, shared by concurrent callers. */
const ensured = new WeakMap<SshConnection, Map<RemoteProgram, Promise<string>>>();

async function upload(conn: SshConnection, name: RemoteProgram): Promise<string> {
  await checkClientHost(conn, name === 'mb-probe' ? { probe: true } : { agent: true });
  const local = name === 'mb-probe' ? await staticProbePath() : await agentScriptPath();
  const home = (await conn.run(['sh', '-c', 'cd && pwd'], { label: 'home directory' })).stdout.trim();
  if (!home.startsWith('/')) throw conn.error(`cannot tell the login directory (got '${home}')`);
  const up = await conn.putByHash(local, `${home}/${REMOTE_BIN_DIR}`, name === 'mb-probe' ? 'mb-probe' : 'mb-http-agent.mjs');
  if (name === 'mb-probe') await conn.run(['chmod', '0755', up.remotePath], { label: `chmod ${up.remotePath}` });
  return up.remotePath;
}

/**
 * Absolute path of a harness program on the host behind `conn`, uploaded when
 * the host does not have this content yet. The host's architecture (mb-probe)
 * or Node.js (the agent) is checked first.
 */
export function ensureRemoteProgram(conn: SshConnection, name: RemoteProgram): Promise<string> {
  let m = ensured.get(conn);
  if (!m) ensured.set(conn, (m = new Map()));
  let p = m.get(name);
  if (!p) {
    p = upload(conn, name);
    m.set(name, p);
    p.catch(() => m.delete(name)); // a failure is retried by the next caller
  }
  return p;
}
