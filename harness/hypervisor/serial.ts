/**
 * Live view of a guest's serial console: splits QEMU's output into lines,
 * lets callers wait for markers, and flags kernel trouble (oops, panic, BUG).
 */

export type SerialProblemKind = 'panic' | 'oops' | 'bug' | 'gpf' | 'warning' | 'call-trace' | 'segfault';

export interface SerialProblem {
  kind: SerialProblemKind;
  line: string;
  /** Epoch ms when the line was seen. */
  atMs: number;
}

const PROBLEMS: [SerialProblemKind, RegExp][] = [
  ['panic', /Kernel panic/],
  ['oops', /\bOops\b/],
  ['bug', /\bBUG: |kernel BUG at/],
  ['gpf', /general protection fault|unable to handle (kernel|page)/i],
  ['warning', /WARNING: CPU: \d+/],
  ['call-trace', /Call Trace:/],
  ['segfault', /segfault at /],
];

/** Kind of kernel problem a console line reports, if any. */
export function classifySerialLine(line: string): SerialProblemKind | null {
  for (const [kind, re] of PROBLEMS) if (re.test(line)) return kind;
  return null;
}

/** Removes terminal escapes (the console shell asks for the cursor position) and CRs. */
export function cleanSerialLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

interface Waiter {
  re: RegExp;
  resolve: (line: string) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const MAX_LINES = 50_000;

export class SerialConsole {
  private partial = '';
  private readonly lines: string[] = [];
  private dropped = 0;
  private readonly problems: SerialProblem[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(line: string) => void>();
  private endedWith: Error | null = null;

  constructor(private readonly label: string) {}

  /** Feeds raw console output. */
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.addLine(cleanSerialLine(p));
  }

  private addLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > MAX_LINES) {
      this.lines.shift();
      this.dropped++;
    }
    const kind = classifySerialLine(line);
    if (kind) this.problems.push({ kind, line, atMs: Date.now() });
    for (const w of [...this.waiters]) {
      if (w.re.test(line)) {
        this.settle(w);
        w.resolve(line);
      } else if (line.includes('MB-ERROR')) {
        // The guest gave up on something; waiting longer cannot help.
        this.settle(w);
        const hint = line.includes('no-nic') ? ' (no virtio NIC appeared: check the tap device and that the virtio modules loaded)' : '';
        w.reject(new Error(`VM ${this.label}: guest reported "${line.trim()}" while waiting for ${w.re}${hint}`));
      }
    }
    for (const l of this.listeners) l(line);
  }

  private settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.waiters.delete(w);
  }

  /** The stream ended (QEMU exited): pending waits fail with `reason`. */
  end(reason: string): void {
    if (this.partial) this.addLine(cleanSerialLine(this.partial));
    this.partial = '';
    this.endedWith = new Error(`VM ${this.label}: ${reason}`);
    for (const w of [...this.waiters]) {
      this.settle(w);
      w.reject(new Error(`VM ${this.label}: ${reason} while waiting for ${w.re}; last console lines:\n${this.tail(8)}`));
    }
  }

  /** Number of lines seen so far; pass as `since` to only match later lines. */
  mark(): number {
    return this.dropped + this.lines.length;
  }

  /** Resolves with the first line (after `since`) matching `re`. */
  waitFor(re: RegExp, timeoutMs: number, since = 0): Promise<string> {
    const from = Math.max(0, since - this.dropped);
    const hit = this.lines.slice(from).find((l) => re.test(l));
    if (hit !== undefined) return Promise.resolve(hit);
    if (this.endedWith) return Promise.reject(new Error(`${this.endedWith.message}; ${re} never appeared`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        re,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`VM ${this.label}: ${re} not seen on the serial console within ${timeoutMs} ms; last lines:\n${this.tail(8)}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  allLines(): readonly string[] {
    return this.lines;
  }

  problemsSeen(): readonly SerialProblem[] {
    return this.problems;
  }

  tail(n: number): string {
    return this.lines.slice(-n).join('\n');
  }
}
