/**
 * One long-lived `virsh` on a server, fed commands on its stdin: a new SSH channel and virsh
 * process per `domjobinfo` would bound the progress rate to a few Hz; one shell answers as
 * fast as libvirtd does. Each command is followed by `echo <marker>`, whose line ends its output.
 * Commands are words virsh splits itself; callers pass only names migbench validated
 * (domain names: assertDomainName) and fixed options.
 */
import type { RemoteProcess, SshConnection } from '../../ssh/connection.ts';
import { LIBVIRT_URI } from './libvirt-vm.ts';
import { within } from '../../util/timers.ts';

/** A virsh command line word that needs no quoting. */
const WORD = /^[A-Za-z0-9._:/=+-]+$/;

/**
 * Splits a virsh shell's output at `marker` (what `echo <marker>` printed): virsh reading a
 * pipe still prints its prompt and the command it read (`virsh # domjobinfo ...`), and the
 * echoed marker without a newline, so the answer is the lines before the marker's own
 * line, minus the prompt lines. Null until the marker has arrived.
 */
export function takeAnswer(out: string, marker: string): { body: string; rest: string } | null {
  const re = new RegExp(`(^|\\n)${marker}(?![0-9])`);
  const m = re.exec(out);
  if (!m) return null;
  const body = out
    .slice(0, m.index)
    .split('\n')
    .filter((l) => !l.startsWith('virsh # '))
    .join('\n');
  return { body, rest: out.slice(m.index + m[0].length) };
}

export class VirshShell {
  private out = '';
  private seq = 0;
  private waiting: { marker: string; resolve: (s: string) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  private constructor(
    private readonly conn: SshConnection,
    private proc: RemoteProcess | null,
  ) {}

  static async open(conn: SshConnection): Promise<VirshShell> {
    const sh = new VirshShell(conn, null);
    sh.proc = await conn.spawn(['virsh', '-q', '-c', LIBVIRT_URI], {
      label: `virsh shell on ${conn.name}`,
      onStdout: (s) => sh.feed(s),
    });
    void sh.proc.done.then(
      (r) => sh.fail(new Error(`virsh shell on ${conn.name} ended (exit ${r.code})`)),
      (e: unknown) => sh.fail(e instanceof Error ? e : new Error(String(e))),
    );
    return sh;
  }

  private fail(e: Error): void {
    this.ended = e;
    this.waiting?.reject(e);
    this.waiting = null;
  }

  private feed(s: string): void {
    this.out += s;
    const w = this.waiting;
    if (!w) return;
    const r = takeAnswer(this.out, w.marker);
    if (!r) return;
    this.out = r.rest;
    this.waiting = null;
    w.resolve(r.body);
  }

  /** Runs one command; resolves with its standard output (errors go to stderr: an empty answer). */
  run(words: readonly string[], timeoutMs = 10_000): Promise<string> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.waiting) return Promise.reject(new Error('virsh shell: one command at a time'));
    for (const w of words) if (!WORD.test(w)) return Promise.reject(new Error(`virsh shell: refusing the word "${w}"`));
    const marker = `MB-END-${++this.seq}`;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`virsh ${words.join(' ')} on ${this.conn.name} did not answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting = {
        marker,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.proc!.write(`${words.join(' ')}\necho ${marker}\n`);
    });
  }

  async close(): Promise<void> {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    if (!this.ended) p.write('quit\n');
    await within(
      p.done.catch(() => undefined),
      2000,
    );
    if (!this.ended) await p.stop(1000).catch(() => undefined);
  }
}
