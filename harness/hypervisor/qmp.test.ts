import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { LineSplitter, QmpClient, QmpClosedError, QmpError, parseGreeting, qmpTimestampMs } from './qmp.ts';

const GREETING = JSON.stringify({
  QMP: { version: { qemu: { micro: 2, minor: 0, major: 10 }, package: 'Debian 1:10.0.2 ' }, capabilities: ['oob'] },
});

type Handler = (cmd: { execute: string; id?: unknown; arguments?: Record<string, unknown> }, sock: Socket) => void;

/** A fake QEMU speaking QMP JSON lines on a unix socket. */
function fakeQemu(path: string, handler: Handler, opts: { greetingChunks?: string[] } = {}): Promise<Server> {
  const server = createServer((sock) => {
    for (const c of opts.greetingChunks ?? [`${GREETING}\r\n`]) sock.write(c);
    const lines = new LineSplitter();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      for (const l of lines.push(d)) {
        const cmd = JSON.parse(l);
        if (cmd.execute === 'qmp_capabilities') sock.write(`${JSON.stringify({ return: {}, id: cmd.id })}\r\n`);
        else handler(cmd, sock);
      }
    });
  });
  return new Promise((r) => server.listen(path, () => r(server)));
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempSocket(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mb-g-qmp-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'qmp.sock');
}

async function serve(path: string, handler: Handler, opts?: { greetingChunks?: string[] }): Promise<Server> {
  const s = await fakeQemu(path, handler, opts);
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

function ev(name: string, seconds: number, micro: number, data: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ event: name, data, timestamp: { seconds, microseconds: micro } })}\r\n`;
}

describe('QMP framing helpers', () => {
  it('splits lines across chunks and strips CR', () => {
    const s = new LineSplitter();
    expect(s.push('{"a":1}\r\n{"b"')).toEqual(['{"a":1}']);
    expect(s.push(':2}\r\n\r\n')).toEqual(['{"b":2}']);
  });
  it('converts QMP timestamps to epoch ms', () => {
    expect(qmpTimestampMs({ seconds: 1700000000, microseconds: 123456 })).toBeCloseTo(1700000000123.456, 3);
    expect(qmpTimestampMs({ seconds: -1, microseconds: -1 })).toBeNaN();
  });
  it('parses the greeting', () => {
    const g = parseGreeting(GREETING);
    expect(g.version).toEqual({ major: 10, minor: 0, micro: 2 });
    expect(g.package).toBe('Debian 1:10.0.2');
    expect(g.capabilities).toEqual(['oob']);
    expect(() => parseGreeting('{"return":{}}')).toThrow(/unexpected greeting/);
  });
});

describe('QmpClient', () => {
  it('matches replies by id even when they come out of order with events in between', async () => {
    const path = tempSocket();
    const held: { id: unknown; sock: Socket }[] = [];
    await serve(path, (cmd, sock) => {
      if (cmd.execute === 'slow') {
        held.push({ id: cmd.id, sock });
      } else if (cmd.execute === 'fast') {
        sock.write(ev('STOP', 1700000000, 500));
        sock.write(`${JSON.stringify({ return: { who: 'fast' }, id: cmd.id })}\r\n`);
        // now answer the earlier slow command, split across writes
        const h = held.shift()!;
        const line = `${JSON.stringify({ return: { who: 'slow', arg: 1 }, id: h.id })}\r\n`;
        sock.write(line.slice(0, 7));
        setTimeout(() => sock.write(line.slice(7)), 5);
      }
    });
    const c = await QmpClient.connect(path, { label: 'fake' });
    cleanups.push(() => c.close());
    expect(c.greeting.version.major).toBe(10);
    const events: string[] = [];
    c.on('event', (e) => events.push(e.event));
    const slow = c.execute<{ who: string }>('slow');
    await new Promise((r) => setTimeout(r, 20));
    const fast = c.execute<{ who: string }>('fast');
    expect(await fast).toEqual({ who: 'fast' });
    expect(await slow).toEqual({ who: 'slow', arg: 1 });
    expect(events).toEqual(['STOP']);
    expect(c.events()[0].timestampMs).toBeCloseTo(1700000000000.5, 3);
    expect(c.events()[0].receivedAtMs).toBeGreaterThan(1.6e12);
  });

  it('turns QMP errors into an Error naming the command and desc', async () => {
    const path = tempSocket();
    await serve(path, (cmd, sock) => {
      sock.write(`${JSON.stringify({ error: { class: 'GenericError', desc: 'no such thing' }, id: cmd.id })}\r\n`);
    });
    const c = await QmpClient.connect(path);
    cleanups.push(() => c.close());
    const err = (await c.execute('migrate', { uri: 'x' }).catch((e: unknown) => e)) as QmpError;
    expect(err).toBeInstanceOf(QmpError);
    expect(err.message).toMatch(/'migrate'.*no such thing/);
    expect(err.desc).toBe('no such thing');
  });

  it('waits for events with a predicate, and can look back from a mark', async () => {
    const path = tempSocket();
    await serve(path, (cmd, sock) => {
      if (cmd.execute === 'go') {
        sock.write(ev('MIGRATION', 1, 0, { status: 'active' }));
        sock.write(ev('MIGRATION', 2, 0, { status: 'completed' }));
        sock.write(`${JSON.stringify({ return: {}, id: cmd.id })}\r\n`);
      }
    });
    const c = await QmpClient.connect(path);
    cleanups.push(() => c.close());
    const m = c.mark();
    await c.execute('go'); // the events arrived before the reply
    const done = await c.waitForEvent('MIGRATION', (e) => e.data.status === 'completed', 1000, { since: m });
    expect(done.timestampMs).toBe(2000);
    // without `since`, already-received events do not count
    await expect(c.waitForEvent('MIGRATION', () => true, 100)).rejects.toThrow(/not received within 100 ms/);
  });

  it('rejects pending commands and event waits with "QEMU exited" on close', async () => {
    const path = tempSocket();
    await serve(path, (cmd, sock) => {
      if (cmd.execute === 'die') setTimeout(() => sock.destroy(), 10);
    });
    const c = await QmpClient.connect(path, { label: 'vm1' });
    const w = c.waitForEvent('RESUME', () => true, 5000);
    const r = c.execute('die');
    await expect(r).rejects.toBeInstanceOf(QmpClosedError);
    await expect(r).rejects.toThrow(/'die'.*QEMU exited \(vm1/);
    await expect(w).rejects.toThrow(/QEMU exited/);
    await c.closed;
    await expect(c.execute('after')).rejects.toThrow(/QEMU exited/);
  });

  it('times out a command that gets no reply', async () => {
    const path = tempSocket();
    await serve(path, () => {});
    const c = await QmpClient.connect(path);
    cleanups.push(() => c.close());
    await expect(c.execute('query-status', undefined, { timeoutMs: 50 })).rejects.toThrow(/'query-status'.*no reply within 50 ms/);
  });

  it('retries until the socket exists, and gives up after the bound', async () => {
    const path = tempSocket();
    const p = QmpClient.connect(path, { timeoutMs: 5000 });
    setTimeout(() => void serve(path, () => {}, { greetingChunks: [GREETING.slice(0, 10), `${GREETING.slice(10)}\n`] }), 150);
    const c = await p;
    cleanups.push(() => c.close());
    expect(c.greeting.capabilities).toEqual(['oob']);

    const t0 = Date.now();
    await expect(QmpClient.connect(tempSocket(), { timeoutMs: 200 })).rejects.toThrow(/not ready within 200 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('stops retrying when aborted', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort('QEMU exited with code 1'), 50);
    await expect(QmpClient.connect(tempSocket(), { timeoutMs: 10_000, signal: ac.signal })).rejects.toThrow(/aborted.*code 1/);
  });

  it("runs over an already open stream that is not a socket (fromStream), keeping the stream's own listeners", async () => {
    // toQemu/fromQemu: the two directions of e.g. an ssh2 streamlocal channel
    const toQemu = new PassThrough();
    const fromQemu = new PassThrough();
    const stream = Duplex.from({ readable: fromQemu, writable: toQemu });
    let ownEnd = 0;
    stream.on('end', () => ownEnd++); // like ssh2's internal 'end' handler, which must survive the greeting
    const lines = new LineSplitter();
    toQemu.setEncoding('utf8');
    toQemu.on('data', (d: string) => {
      for (const l of lines.push(d)) {
        const cmd = JSON.parse(l);
        if (cmd.execute === 'qmp_capabilities') fromQemu.write(`${JSON.stringify({ return: {}, id: cmd.id })}\r\n`);
        if (cmd.execute === 'query-status') {
          fromQemu.write(ev('RESUME', 1700000001, 0));
          fromQemu.write(`${JSON.stringify({ return: { status: 'running' }, id: cmd.id })}\r\n`);
        }
      }
    });
    // greeting torn across writes, with an event right behind it in the same chunk
    fromQemu.write(GREETING.slice(0, 7));
    fromQemu.write(`${GREETING.slice(7)}\r\n${ev('STOP', 1700000000, 250)}`);
    const c = await QmpClient.fromStream(stream, { label: 'vm1@h1', timeoutMs: 2000 });
    expect(c.greeting.version.major).toBe(10);
    expect(c.events().map((e) => [e.event, e.timestampMs])).toEqual([['STOP', 1700000000000.25]]);
    expect(await c.execute('query-status')).toEqual({ status: 'running' });
    expect(c.events().map((e) => e.event)).toEqual(['STOP', 'RESUME']);
    const pending = c.execute('never-answered');
    fromQemu.end(); // the remote side went away
    await expect(pending).rejects.toThrow(/QEMU exited \(vm1@h1 connection closed\)/);
    await c.closed;
    expect(ownEnd).toBe(1);
  });

  it('fromStream: a stream that says nothing fails within the bound, naming the label', async () => {
    const stream = Duplex.from({ readable: new PassThrough(), writable: new PassThrough() });
    await expect(QmpClient.fromStream(stream, { label: 'vm9@h2', timeoutMs: 100 })).rejects.toThrow(
      /QMP vm9@h2: no greeting within 100 ms/,
    );
    expect(stream.destroyed).toBe(true);
  });
});
