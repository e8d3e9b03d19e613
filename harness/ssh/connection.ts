/**
 * One SSH connection to one server (ssh2): host-key checking against
 * known_hosts, jump hosts, keepalive, one reconnect when a command finds the
 * connection lost, exec with an argv, streaming processes that can be stopped,
 * SFTP upload by content hash. Every failure names the host and what to check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { UserError, errorMessage } from '../util/errors.ts';
import { algorithmsForKeyType, wireKeyType, type KnownHosts } from './known-hosts.ts';
import { shJoin } from './quote.ts';
import { describeTarget, type ExecResult, type HostKeyMode, type SshTarget } from './types.ts';
import { within } from '../util/timers.ts';

/** An SSH failure the user can act on; `host` is the inventory name. */
export class SshError extends UserError {
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
    this.name = 'SshError';
  }
}

export interface ConnectionOptions {
  hostKeys: KnownHosts;
  hostKeyMode: HostKeyMode;
  /** TCP connect + handshake + authentication. */
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Returns the (connected) connection to a gateway; the pool shares one per gateway. */
  jump?: (t: SshTarget) => Promise<SshConnection>;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Names the command in messages (default: the argv, shortened). */
  label?: string;
  env?: Readonly<Record<string, string>>;
  stdin?: string | Buffer;
}

export interface RemoteProcess {
  /** Process group of the remote command (it leads its own session). */
  pgid: number;
  /** Settles when the remote command ends; rejects when the connection is lost first. */
  done: Promise<ExecResult>;
  write(data: string | Buffer): void;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<ExecResult | null>;
}

export interface UploadResult {
  remotePath: string;
  /** false when a copy with the same content hash was already there. */
  uploaded: boolean;
  bytes: number;
  sha256: string;
  ms: number;
}

const SUPPORTED_HOST_KEY_TYPES = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);

/**
 * Every command runs as `sh -c <prelude> mb argv...`: the prelude reports the
 * process group (the session sshd created for this channel) so a timeout or
 * stop() can end the command with all its children, then execs the argv.
 */
const PRELUDE = 'read -r _ _ _ _ g _ < /proc/$$/stat; printf "MBPGID %s\\n" "$g"; exec "$@"';
/** Login-shell rc files may print before it: anything before the mark is dropped. */
const MARK = /(?:^|\n)MBPGID (\d+)\n/;

function labelOf(argv: readonly string[], opts: ExecOptions): string {
  if (opts.label) return opts.label;
  const s = argv.join(' ').replace(/\s+/g, ' ');
  return `'${s.length > 100 ? `${s.slice(0, 97)}...` : s}'`;
}

/** Exit status of each exec channel, recorded as soon as the channel exists. */
const exits = new WeakMap<ClientChannel, { code: number | null; signal: string | null }>();

/** Local content hashes, keyed by path+size+mtime (guest images are hashed once per process). */
const hashCache = new Map<string, string>();
async function sha256File(path: string): Promise<string> {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const hit = hashCache.get(key);
  if (hit) return hit;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const hex = h.digest('hex');
  hashCache.set(key, hex);
  return hex;
}

export class SshConnection {
  private client: Client | undefined;
  private opening: Promise<Client> | undefined;
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private closed = false;
  /** Times the connection was re-established after a loss. */
  reconnects = 0;
  /** Last loss reason (keepalive timeout, reset...), for messages. */
  lastLoss: string | undefined;

  constructor(
    readonly target: SshTarget,
    private readonly opts: ConnectionOptions,
  ) {}

  get name(): string {
    return this.target.name;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Opens the connection (no-op when open). */
  async connect(): Promise<void> {
    await this.ensure();
  }

  private ensure(): Promise<Client> {
    if (this.closed)
      return Promise.reject(new SshError(this.name, `${describeTarget(this.target)}: connection already closed by migbench`));
    if (this.client) return Promise.resolve(this.client);
    if (!this.opening) {
      const wasUsed = this.lastLoss !== undefined;
      this.opening = this.open().then(
        (c) => {
          this.opening = undefined;
          if (wasUsed) this.reconnects++;
          return c;
        },
        (e: unknown) => {
          this.opening = undefined;
          throw e;
        },
      );
    }
    return this.opening;
  }

  /** An SshError naming this host and how it is reached. */
  error(what: string): SshError {
    return new SshError(this.name, `${describeTarget(this.target)}: ${what}`);
  }

  private fail(what: string): SshError {
    return this.error(what);
  }

  private async open(): Promise<Client> {
    const t = this.target;
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    let sock: Duplex | undefined;
    if (t.jump) {
      if (!this.opts.jump) throw this.fail(`needs gateway ${t.jump.name} but no gateway connector was given`);
      let gw: SshConnection;
      try {
        gw = await this.opts.jump(t.jump);
      } catch (e) {
        throw this.fail(`cannot reach it through gateway ${t.jump.name}: ${errorMessage(e)}`);
      }
      try {
        sock = await gw.forwardOut(t.host, t.port);
      } catch (e) {
        throw this.fail(
          `gateway ${t.jump.name} could not open a TCP connection to ${t.host}:${t.port} (${errorMessage(e)}); ` +
            'check the address and port as seen from the gateway, and that the gateway allows TCP forwarding',
        );
      }
    }
    let privateKey: Buffer | undefined;
    if (t.keyFile) {
      try {
        privateKey = readFileSync(t.keyFile);
      } catch (e) {
        throw this.fail(`cannot read key file ${t.keyFile} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}); check key_file`);
      }
    }
    const hk = this.opts.hostKeys;
    let hostKeyProblem: string | undefined;
    const known = hk.knownTypes(t.host, t.port).filter((k) => SUPPORTED_HOST_KEY_TYPES.has(k));
    const pref = known.flatMap(algorithmsForKeyType);
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      privateKey,
      agent: t.agent,
      sock,
      readyTimeout: timeout,
      keepaliveInterval: this.opts.keepaliveIntervalMs ?? 5000,
      keepaliveCountMax: this.opts.keepaliveCountMax ?? 3,
      // Ask for the key types known_hosts has for this host first, as OpenSSH does.
      algorithms: pref.length
        ? ({ serverHostKey: { remove: pref, prepend: pref } as unknown as string[] } as ConnectConfig['algorithms'])
        : undefined,
      hostVerifier: (key: Buffer): boolean => {
        const v = hk.verdict(t.host, t.port, key);
        const type = wireKeyType(key);
        const fp = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
        if (v.kind === 'known') return true;
        if (v.kind === 'revoked') hostKeyProblem = `host key ${type} ${fp} is marked @revoked in ${v.where}; refusing to connect`;
        else if (v.kind === 'changed') {
          hostKeyProblem =
            `HOST KEY CHANGED: the server presented ${type} ${fp}, which differs from the key recorded in ${v.where}. ` +
            'This may be a reinstalled server or a man-in-the-middle; refusing to connect. If the change is expected, ' +
            `remove the old entry (ssh-keygen -R '${t.port === 22 ? t.host : `[${t.host}]:${t.port}`}' -f ${v.where.replace(/:\d+$/, '')}) and connect again`;
        } else if (this.opts.hostKeyMode === 'accept-new') {
          hk.record(t.host, t.port, key);
          return true;
        } else {
          hostKeyProblem =
            `host key ${type} ${fp} is not in known_hosts (strict checking); add it, e.g. ` +
            `ssh-keyscan -p ${t.port} ${t.host} >> ~/.ssh/known_hosts after checking the fingerprint, ` +
            "or set host_key_check: accept-new in the inventory to record new keys in migbench's known_hosts";
        }
        return false;
      },
    };
    const client = new Client();
    return new Promise<Client>((resolve, reject) => {
      let ready = false;
      client.once('ready', () => {
        if (this.closed) {
          client.end();
          return reject(this.fail('connection closed by migbench while it was being opened'));
        }
        ready = true;
        this.client = client;
        this.sftpSession = undefined;
        resolve(client);
      });
      client.on('error', (e: Error & { level?: string; code?: string }) => {
        if (!ready) {
          client.end();
          reject(this.explain(e, hostKeyProblem, timeout));
        } else this.lastLoss = errorMessage(e);
      });
      client.on('close', () => {
        if (!ready) reject(this.explain(new Error('connection closed during the handshake'), hostKeyProblem, timeout));
        if (this.client === client) {
          this.client = undefined;
          this.lastLoss ??= 'connection closed';
        }
        if (ready && this.lastLoss === undefined) this.lastLoss = 'connection closed';
      });
      try {
        client.connect(cfg);
      } catch (e) {
        reject(
          this.fail(`invalid connection settings: ${errorMessage(e)}; check key_file (a private key, not passphrase-protected) and user`),
        );
      }
    });
  }

  private explain(e: Error & { level?: string; code?: string }, hostKeyProblem: string | undefined, timeoutMs: number): SshError {
    const t = this.target;
    if (hostKeyProblem) return this.fail(hostKeyProblem);
    const via = t.jump ? ` via gateway ${t.jump.name}` : '';
    if (e.level === 'client-authentication') {
      const how = [t.keyFile && `key ${t.keyFile}`, t.agent && `agent ${t.agent}`].filter(Boolean).join(' and ');
      return this.fail(
        `authentication failed for user '${t.user}' with ${how || 'no key'}; check key_file/agent, user, and the server's authorized_keys`,
      );
    }
    if (e.code === 'ECONNREFUSED') return this.fail(`connection refused; check that sshd runs there and the port (${t.port})${via}`);
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
      return this.fail(`cannot resolve '${t.host}'; check the address in the inventory`);
    if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH')
      return this.fail(`no route to ${t.host}; check the address and the network${via}`);
    if (e.level === 'client-timeout' || /timed out/i.test(e.message)) {
      return this.fail(
        `no SSH answer within ${timeoutMs / 1000} s; check the address, port ${t.port}, firewalls${t.jump ? ' and the gateway' : ''}`,
      );
    }
    if (e.level === 'client-socket' || e.code === 'ECONNRESET') {
      return this.fail(
        `connection dropped during the handshake (${e.message}); check the port (${t.port}) is an SSH server and the server's sshd log`,
      );
    }
    if (/handshake|host key|verification/i.test(e.message)) {
      return this.fail(`SSH handshake failed (${e.message}); check known_hosts and that the server's key and algorithms are usable`);
    }
    return this.fail(`cannot connect: ${e.message}`);
  }

  /** Opens an exec channel; when the connection turns out to be lost before the command started, reconnects once. */
  private async channel(cmd: string): Promise<ClientChannel> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.ensure();
      try {
        return await new Promise<ClientChannel>((resolve, reject) => {
          try {
            c.exec(cmd, (err, ch) => {
              if (err) return reject(err);
              // exit-status can arrive in the same read as the open confirmation, before an awaiting caller
              // could listen: record it now (data is buffered by the stream, events are not)
              ch.once('exit', (code: number | null, signal?: string) => exits.set(ch, { code: code ?? null, signal: signal ?? null }));
              resolve(ch);
            });
          } catch (e) {
            reject(e as Error);
          }
        });
      } catch (e) {
        await new Promise((r) => setImmediate(r)); // let a pending 'close' mark the connection lost
        const lost = this.client !== c || /Not connected|No response/i.test(errorMessage(e));
        if (lost && this.client === c) {
          this.client = undefined;
          this.lastLoss ??= errorMessage(e);
          c.end();
        }
        if (lost && attempt === 0) continue;
        throw this.fail(
          `cannot start a command (${errorMessage(e)})${lost ? '; the connection was lost and reconnecting did not help' : '; check MaxSessions in sshd_config'}`,
        );
      }
    }
  }

  /** Starts argv; resolves once the remote shell reported the process group. */
  private async start(argv: readonly string[], opts: ExecOptions, onOut: (s: Buffer) => void, onErr: (s: Buffer) => void) {
    const ch = await this.channel(shJoin(['sh', '-c', PRELUDE, 'mb', ...argv], opts.env));
    let head = Buffer.alloc(0);
    let pgid = -1;
    let resolvePgid!: (n: number) => void;
    const gotPgid = new Promise<number>((r) => (resolvePgid = r));
    const done = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      ch.on('data', (d: Buffer) => {
        if (pgid >= 0) return onOut(d);
        head = Buffer.concat([head, d]);
        const m = MARK.exec(head.toString('latin1'));
        if (m) {
          pgid = Number(m[1]);
          resolvePgid(pgid);
          const rest = head.subarray(m.index + m[0].length); // latin1: one char per byte
          if (rest.length) onOut(rest);
        }
      });
      ch.stderr.on('data', (d: Buffer) => onErr(d));
      ch.on('close', () => {
        if (pgid < 0) resolvePgid(-1);
        const exit = exits.get(ch);
        if (exit) resolve(exit);
        else
          reject(
            this.fail(
              `connection lost while ${labelOf(argv, opts)} ran (${this.lastLoss ?? 'no exit status'}); the command may or may not have completed`,
            ),
          );
      });
    });
    done.catch(() => undefined); // callers race it against timeouts; a late loss must not go unhandled
    if (opts.stdin !== undefined) ch.end(opts.stdin);
    return { ch, pgid: await gotPgid, done };
  }

  /** Ends a remote process group (best effort, over a fresh channel). */
  private async killGroup(pgid: number, signal: 'TERM' | 'KILL'): Promise<void> {
    if (pgid <= 1) return;
    const ch = await this.channel(shJoin(['kill', '-s', signal, '--', `-${pgid}`]));
    await new Promise<void>((r) => {
      ch.on('close', () => r());
      ch.resume();
      ch.stderr.resume();
      ch.end();
    });
  }

  /** Runs argv (quoted by the one helper) and collects its output; a non-zero exit is a result, not an error. */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const { ch, pgid, done } = await this.start(
      argv,
      opts,
      (d) => out.push(d),
      (d) => err.push(d),
    );
    if (opts.stdin === undefined) ch.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => {
        this.killGroup(pgid, 'KILL').catch(() => undefined);
        ch.close();
        reject(
          this.fail(
            `${labelOf(argv, opts)} did not finish within ${timeoutMs / 1000} s (ended it); check the server's load or raise the timeout`,
          ),
        );
      }, timeoutMs);
    });
    try {
      const r = await Promise.race([done, timedOut]);
      return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: r.code, signal: r.signal };
    } finally {
      clearTimeout(timer);
    }
  }

  /** exec() that throws an SshError naming host, command and stderr when the exit is not 0. */
  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) {
      throw this.fail(
        `${labelOf(argv, opts)} failed (${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}): ${(r.stderr.trim() || r.stdout.trim()).slice(0, 500)}`,
      );
    }
    return r;
  }

  /** Starts a long-running command; output is streamed to the callbacks. */
  async spawn(
    argv: readonly string[],
    opts: Omit<ExecOptions, 'timeoutMs' | 'stdin'> & { onStdout?: (s: string) => void; onStderr?: (s: string) => void } = {},
  ): Promise<RemoteProcess> {
    const { ch, pgid, done } = await this.start(
      argv,
      opts,
      (d) => opts.onStdout?.(d.toString('utf8')),
      (d) => opts.onStderr?.(d.toString('utf8')),
    );
    done.catch(() => undefined); // observed through the handle
    const stop = async (graceMs = 3000): Promise<ExecResult | null> => {
      const ended = done.then(
        (r) => ({ stdout: '', stderr: '', ...r }),
        () => null,
      );
      await this.killGroup(pgid, 'TERM');
      // ended gives null for a failed channel too: that is an end as well, so the timeout is told apart by a marker
      const first = await within(
        ended.then((r) => ({ r })),
        graceMs,
      );
      if (first) return first.r;
      await this.killGroup(pgid, 'KILL');
      return within(ended, graceMs);
    };
    const handleDone = done.then((r) => ({ stdout: '', stderr: '', ...r }));
    handleDone.catch(() => undefined); // a caller that never awaits done must not crash the process
    return {
      pgid,
      done: handleDone,
      write: (data) => ch.write(data),
      stop,
    };
  }

  /** A TCP stream from the server to host:port (gateways, forwarded services). */
  async forwardOut(host: string, port: number): Promise<Duplex> {
    const c = await this.ensure();
    return new Promise((resolve, reject) =>
      c.forwardOut('127.0.0.1', 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream))),
    );
  }

  /** A stream to a unix socket on the server (QMP of a remote QEMU). */
  async openUnixSocket(path: string): Promise<Duplex> {
    const c = await this.ensure();
    return new Promise((resolve, reject) =>
      c.openssh_forwardOutStreamLocal(path, (err, stream) =>
        err ? reject(this.fail(`cannot open unix socket ${path}: ${err.message}`)) : resolve(stream),
      ),
    );
  }

  private async sftp(): Promise<SFTPWrapper> {
    const c = await this.ensure();
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) =>
      c.sftp((err, s) =>
        err ? reject(this.fail(`SFTP is not available (${err.message}); check the sshd Subsystem sftp setting`)) : resolve(s),
      ),
    );
    this.sftpSession.catch(() => (this.sftpSession = undefined));
    return this.sftpSession;
  }

  /**
   * Uploads a file as `<remoteDir>/<sha256 prefix>-<name>` unless a copy of that
   * name and size exists; written to a temporary name and renamed, so a present
   * name means complete content.
   */
  async putByHash(localPath: string, remoteDir: string, name = basename(localPath)): Promise<UploadResult> {
    const t0 = performance.now();
    const sha256 = await sha256File(localPath);
    const bytes = statSync(localPath).size;
    const remotePath = `${remoteDir.replace(/\/+$/, '')}/${sha256.slice(0, 32)}-${name}`;
    const s = await this.sftp();
    const p = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void) =>
      new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
    const existing = await p<{ size: number }>((cb) => s.stat(remotePath, cb as never)).catch(() => null);
    if (existing && existing.size === bytes) return { remotePath, uploaded: false, bytes, sha256, ms: performance.now() - t0 };
    let dir = remoteDir.startsWith('/') ? '' : '.';
    for (const part of remoteDir.split('/').filter(Boolean)) {
      dir = dir === '' ? `/${part}` : `${dir}/${part}`;
      const st = await p<{ isDirectory(): boolean }>((cb) => s.stat(dir, cb as never)).catch(() => null);
      // another upload (a sibling guest's, or another server sharing this filesystem) may create it meanwhile
      if (!st)
        await p<void>((cb) => s.mkdir(dir, cb)).catch(async (e: Error) => {
          if (!(await p<unknown>((cb) => s.stat(dir, cb as never)).catch(() => null)))
            throw this.fail(`cannot create ${dir}: ${e.message}`);
        });
    }
    const tmp = `${remotePath}.part-${randomBytes(4).toString('hex')}`;
    try {
      await p<void>((cb) => s.fastPut(localPath, tmp, cb));
      await p<void>((cb) => s.ext_openssh_rename(tmp, remotePath, cb)).catch(() => p<void>((cb) => s.rename(tmp, remotePath, cb)));
    } catch (e) {
      await p<void>((cb) => s.unlink(tmp, cb)).catch(() => undefined);
      throw this.fail(`upload of ${localPath} to ${remotePath} failed: ${errorMessage(e)}; check free space and permissions there`);
    }
    return { remotePath, uploaded: true, bytes, sha256, ms: performance.now() - t0 };
  }

  /** Ends the connection for good (no reconnect). */
  close(): void {
    this.closed = true;
    this.client?.end();
    this.client = undefined;
  }
}
