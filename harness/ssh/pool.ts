/**
 * One SSH connection per server (and per gateway), opened in parallel with a
 * concurrency cap so a 100-server inventory neither connects one by one nor
 * floods a site's gateway or sshd MaxStartups.
 */
import { UserError, errorMessage } from '../util/errors.ts';
import { SshConnection } from './connection.ts';
import { KnownHosts } from './known-hosts.ts';
import type { HostKeyPolicy, SshTarget } from './types.ts';

export interface PoolOptions {
  hostKeys: HostKeyPolicy;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Handshakes in flight at once (sshd's MaxStartups starts refusing at 10 per server; these go to different servers). */
  concurrency?: number;
}

/** Runs fn over items with at most `limit` in flight; results in input order, failures as Errors. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i], i) };
      } catch (e) {
        out[i] = { status: 'rejected', reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export class SshPool {
  readonly knownHosts: KnownHosts;
  private readonly conns = new Map<string, SshConnection>();

  constructor(private readonly opts: PoolOptions) {
    this.knownHosts = new KnownHosts(opts.hostKeys.knownHostsFiles, opts.hostKeys.ownKnownHosts);
  }

  /** The connection object for a target (created on first use, not yet connected). */
  connection(t: SshTarget): SshConnection {
    let c = this.conns.get(t.name);
    if (c && (c.target.host !== t.host || c.target.port !== t.port || c.target.user !== t.user)) {
      throw new Error(`two different SSH targets are both named '${t.name}' (${c.target.host}:${c.target.port} and ${t.host}:${t.port})`);
    }
    if (!c) {
      c = new SshConnection(t, {
        hostKeys: this.knownHosts,
        hostKeyMode: this.opts.hostKeys.mode,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        keepaliveIntervalMs: this.opts.keepaliveIntervalMs,
        keepaliveCountMax: this.opts.keepaliveCountMax,
        jump: async (gw) => {
          const g = this.connection(gw);
          await g.connect();
          return g;
        },
      });
      this.conns.set(t.name, c);
    }
    return c;
  }

  get(name: string): SshConnection {
    const c = this.conns.get(name);
    if (!c) throw new Error(`no SSH connection for host '${name}'`);
    return c;
  }

  /**
   * Connects to every target in parallel. All failures are reported together,
   * one line per host; per-host connect times (ms) are returned.
   */
  async connectAll(targets: readonly SshTarget[]): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    const res = await mapLimit(targets, this.opts.concurrency ?? 32, async (t) => {
      const t0 = performance.now();
      await this.connection(t).connect();
      times.set(t.name, performance.now() - t0);
    });
    const failed = res.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
    if (failed.length) {
      throw new UserError(
        failed.length === 1 ? failed[0] : `cannot connect to ${failed.length} of ${targets.length} hosts:\n  ${failed.join('\n  ')}`,
      );
    }
    return times;
  }

  /** Closes servers first, then the gateways they went through. */
  closeAll(): void {
    const all = [...this.conns.values()];
    const gateways = new Set(all.flatMap((c) => (c.target.jump ? [c.target.jump.name] : [])));
    for (const c of all) if (!gateways.has(c.name)) c.close();
    for (const c of all) if (gateways.has(c.name)) c.close();
    this.conns.clear();
  }
}
