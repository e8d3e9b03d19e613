import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import {
  computeOutages,
  cpuMsFromStat,
  delayForwarderArgs,
  longestOutage,
  parseProbeLine,
  parseProbeSummary,
  probeArgs,
  probeLoss,
  reaperPath,
  type ProbeRecord,
} from './programs.ts';

const T0 = 1_795_000_000_000_000; // epoch µs

/** Probes every `intervalMs` from T0, lost where `lost(seq)`; replies 300 µs after sending. */
function series(n: number, intervalMs: number, lost: (seq: number) => boolean): ProbeRecord[] {
  return Array.from({ length: n }, (_, seq) => {
    const sentUs = T0 + seq * intervalMs * 1000;
    return { seq, sentUs, recvUs: lost(seq) ? null : sentUs + 300 };
  });
}

describe('parseProbeLine', () => {
  it('parses answered and lost probes', () => {
    expect(parseProbeLine('{"seq":7,"sent_us":1795305774127441,"recv_us":1795305774127468}\n')).toEqual({
      seq: 7,
      sentUs: 1795305774127441,
      recvUs: 1795305774127468,
    });
    expect(parseProbeLine('{"seq":0,"sent_us":1795305774127441,"recv_us":null}')).toEqual({
      seq: 0,
      sentUs: 1795305774127441,
      recvUs: null,
    });
  });

  it('rejects blank lines, summaries, broken JSON and wrong types', () => {
    expect(parseProbeLine('')).toBeNull();
    expect(parseProbeLine('{"event":"summary","sent":3}')).toBeNull();
    expect(parseProbeLine('{"seq":1,"sent_us":12')).toBeNull();
    expect(parseProbeLine('{"seq":"1","sent_us":12,"recv_us":null}')).toBeNull();
    expect(parseProbeLine('{"seq":1,"sent_us":12}')).toBeNull(); // recv_us missing
    expect(parseProbeLine('{"seq":-1,"sent_us":12,"recv_us":null}')).toBeNull();
    expect(parseProbeLine('{"seq":1,"sent_us":1.5,"recv_us":null}')).toBeNull();
  });
});

describe('computeOutages', () => {
  it("23 lost probes at 10 ms give a 230 ms outage bounded by the neighbours' send times", () => {
    const recs = series(200, 10, (s) => s >= 50 && s <= 72);
    const out = computeOutages(recs, 10);
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual({
      firstLostSeq: 50,
      lastLostSeq: 72,
      lostCount: 23,
      startUs: T0 + 49 * 10_000,
      endUs: T0 + 73 * 10_000,
      durationMs: 230,
      uncertaintyMs: 10,
      bounded: true,
    });
  });

  it('gives ± one interval on schedule, at 1 ms too', () => {
    const out = computeOutages(
      series(2000, 1, (s) => s >= 500 && s <= 886),
      1,
    );
    expect(out.map((o) => [o.durationMs, o.uncertaintyMs])).toEqual([[387, 1]]);
  });

  it('uses real send times, not the probe count, when the prober skipped slots', () => {
    // probe 51 was sent 35 ms after 50 (slots skipped); 51..52 lost; 53 answered.
    const recs: ProbeRecord[] = [
      { seq: 50, sentUs: T0, recvUs: T0 + 500 },
      { seq: 51, sentUs: T0 + 35_000, recvUs: null },
      { seq: 52, sentUs: T0 + 45_000, recvUs: null },
      { seq: 53, sentUs: T0 + 55_000, recvUs: T0 + 55_400 },
    ];
    expect(computeOutages(recs, 10)[0].durationMs).toBe(45);
    // down at least 51..52 (10 ms), at most 50..53 (55 ms): 45 ± 35 covers both
    expect(computeOutages(recs, 10)[0].uncertaintyMs).toBe(35);
  });

  it('ignores reply latency: a slow first reply after the gap does not lengthen the outage', () => {
    const recs = series(100, 10, (s) => s >= 10 && s <= 19);
    recs[20] = { ...recs[20], recvUs: recs[20].sentUs + 80_000 };
    expect(computeOutages(recs, 10)[0].durationMs).toBe(100);
  });

  it('accepts records in any order and finds several runs', () => {
    const recs = series(100, 10, (s) => s === 5 || (s >= 40 && s <= 44)).reverse();
    const out = computeOutages(recs, 10);
    expect(out.map((o) => [o.firstLostSeq, o.lostCount, o.durationMs])).toEqual([
      [5, 1, 10],
      [40, 5, 50],
    ]);
    expect(computeOutages(recs, 10, { minLost: 2 }).map((o) => o.firstLostSeq)).toEqual([40]);
  });

  it('leaves out runs at the edges unless asked, then marks them unbounded', () => {
    const recs = series(20, 10, (s) => s < 3 || s >= 17);
    expect(computeOutages(recs, 10)).toEqual([]);
    const out = computeOutages(recs, 10, { includeUnbounded: true });
    expect(out.map((o) => [o.firstLostSeq, o.lostCount, o.durationMs, o.bounded])).toEqual([
      [0, 3, 30, false],
      [17, 3, 30, false],
    ]);
  });

  it('returns nothing when every probe was answered, and rejects a bad interval', () => {
    expect(
      computeOutages(
        series(50, 10, () => false),
        10,
      ),
    ).toEqual([]);
    expect(computeOutages([], 10)).toEqual([]);
    expect(() => computeOutages([], 0)).toThrow(RangeError);
  });
});

describe('longestOutage', () => {
  const recs = series(300, 10, (s) => (s >= 20 && s <= 24) || (s >= 100 && s <= 129) || (s >= 250 && s <= 259));

  it('picks the longest run', () => {
    const o = longestOutage(recs, 10);
    expect(o?.firstLostSeq).toBe(100);
    expect(o?.durationMs).toBe(300);
  });

  it('restricts to outages overlapping the window and keeps their full length', () => {
    // window starts inside the 250..259 run: that run still counts in full
    const o = longestOutage(recs, 10, { fromUs: T0 + 255 * 10_000, toUs: T0 + 299 * 10_000 });
    expect(o?.firstLostSeq).toBe(250);
    expect(o?.durationMs).toBe(100);
    expect(longestOutage(recs, 10, { fromUs: T0 + 140 * 10_000, toUs: T0 + 240 * 10_000 })).toBeNull();
  });
});

describe('argument builders', () => {
  it('builds mb-delayfwd arguments in microseconds', () => {
    expect(
      delayForwarderArgs({ ifA: 'x', ifB: 'y', ab: { delayMs: 25, jitterMs: 2.5 }, ba: { delayMs: 0, loss: 0.01 }, pidfile: '/tmp/p' }),
    ).toEqual([
      '--a',
      'x',
      '--b',
      'y',
      '--delay-ab',
      '25000us',
      '--delay-ba',
      '0us',
      '--jitter-ab',
      '2500us',
      '--loss-ba',
      '0.01',
      '--pidfile',
      '/tmp/p',
    ]);
  });

  it('passes --max-wait and --rt to mb-delayfwd when asked', () => {
    const a = delayForwarderArgs({ ifA: 'x', ifB: 'y', ab: { delayMs: 1 }, ba: { delayMs: 1 }, maxWaitMs: 10, rt: true });
    expect(a.slice(8)).toEqual(['--max-wait', '10000us', '--rt']);
  });

  it('builds mb-probe arguments', () => {
    expect(probeArgs({ target: '10.0.0.2', intervalMs: 10, durationMs: 30_000, rt: true, id: 7 })).toEqual([
      '--target',
      '10.0.0.2',
      '--interval',
      '10000us',
      '--duration',
      '30000000us',
      '--rt',
      '--id',
      '7',
    ]);
  });
});

describe("probeLoss: the probe's own loss outside migrations", () => {
  // 1 ms probes; a migration window 1000..1999 ms with its outage 1500..1899 running past the window's end;
  // two probes lost on their own at 300 and 2500
  const recs = series(3000, 1, (s) => s === 300 || s === 2500 || (s >= 1500 && s <= 2100));
  const win = { fromUs: T0 + 1000_000, toUs: T0 + 1999_000 };

  it("counts probes sent outside every window, and a loss run overlapping one as the migration's", () => {
    expect(probeLoss(recs, 1, [win])).toEqual({ sent: 3000 - 1000 - 101, lost: 2 });
    expect(probeLoss(recs, 1, [])).toEqual({ sent: 3000, lost: 603 });
  });

  it('counts only below a seq, classifying runs on all records', () => {
    expect(probeLoss(recs, 1, [win], 1000)).toEqual({ sent: 1000, lost: 1 });
    // the outage crossing seq 2050 is still the migration's
    expect(probeLoss(recs, 1, [win], 2050)).toEqual({ sent: 1000, lost: 1 });
  });
});

describe('mb-probe summary and CPU time', () => {
  it('finds the summary line among stderr lines', () => {
    const err =
      'mb-probe: something\n{"event":"summary","sent":10,"received":9,"lost":1,"late_replies":0,"skipped_slots":0,"send_errors":0,' +
      '"raw_socket":true,"rt":true,"cpu_user_us":1500,"cpu_sys_us":22000}\n';
    expect(parseProbeSummary(err)).toMatchObject({ sent: 10, lost: 1, cpu_user_us: 1500, cpu_sys_us: 22000 });
    expect(parseProbeSummary('mb-probe: cannot open an ICMP socket\n')).toBeNull();
  });

  it('reads utime + stime from /proc/<pid>/stat, a command name with spaces and parentheses included', () => {
    const stat = '4242 (mb (pro) be) S 1 4242 4242 0 -1 4194560 120 0 0 0 37 205 0 0 -51 0 2 0 974005 5767168 300';
    expect(cpuMsFromStat(stat)).toBe(2420);
    expect(cpuMsFromStat('garbage')).toBeNull();
  });
});

describe('mb-reaper', () => {
  // OUTER (the command mb-reaper becomes) starts a subshell that starts GRAND and exits at once. GRAND waits until
  // it is orphaned (its parent is no longer that subshell, whose parent is OUTER), then writes its new parent's PID
  // to a file that OUTER waits for and prints after its own PID.
  const GRAND = [
    'o=$1',
    'while :; do',
    "  p=$(cut -d' ' -f4 /proc/$$/stat)",
    '  [ "$p" = "$o" ] && break',
    '  [ "$(cut -d\' \' -f4 /proc/$p/stat 2>/dev/null)" = "$o" ] || break',
    '  sleep 0.02',
    'done',
    'echo "$p" > "$2.tmp" && mv "$2.tmp" "$2"',
  ].join('\n');
  const OUTER =
    'echo $$; f=$(mktemp); ( sh -c "$0" _ $$ "$f" & ); i=0; until [ -s "$f" ] || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done; cat "$f"; rm -f "$f"';
  const parents = (stdout: string) => stdout.trim().split('\n').map(Number);

  it('runs its command as a child subreaper: an orphaned grandchild is re-parented to the command', async () => {
    const [self, parentOfOrphan] = parents((await execa(await reaperPath(), ['sh', '-c', OUTER, GRAND])).stdout);
    expect(parentOfOrphan).toBe(self);
    // without it the orphan goes elsewhere (PID 1 or another subreaper): the check above can fail
    const [plainSelf, plainParent] = parents((await execa('sh', ['-c', OUTER, GRAND])).stdout);
    expect(plainParent).toBeGreaterThan(0);
    expect(plainParent).not.toBe(plainSelf);
  });

  it('says what is wrong without a command or with one that does not exist', async () => {
    const none = await execa(await reaperPath(), [], { reject: false });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/^usage: mb-reaper PROGRAM/);
    const missing = await execa(await reaperPath(), ['/nonexistent/mb-x'], { reject: false });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toBe('mb-reaper: cannot run /nonexistent/mb-x: No such file or directory');
  });
});
