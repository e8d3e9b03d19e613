/**
 * The timeline of one migration as a vega-lite spec: panels stacked on one
 * time axis (s since the migrate command), STOP / RESUME / end drawn across
 * all of them, a zoom on the downtime, and a note in place of a panel
 * without data.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { MarkerKind, Timeline, TimelinePanel } from '../timeline.ts';
import { renderSvg } from './svg.ts';

const WIDTH = 700;
const MARKER_COLORS: Record<MarkerKind, string> = {
  STOP: '#d62728',
  RESUME: '#2ca02c',
  postcopy: '#9467bd',
  completed: '#222222',
  cancelled: '#ff7f0e',
  failed: '#ff7f0e',
};
const KINDS = Object.keys(MARKER_COLORS) as MarkerKind[];

type Layer = Record<string, unknown>;
type Row = Record<string, string | number | null>;

/** Keeps the largest value per time bucket: a 1 kHz probe stays drawable and its spikes stay visible. */
export function maxPerBucket<T extends { t: number }>(
  rows: readonly T[],
  value: (r: T) => number,
  from: number,
  to: number,
  buckets = 1500,
): T[] {
  if (rows.length <= buckets) return [...rows];
  const w = (to - from) / buckets;
  const best = new Map<number, T>();
  for (const r of rows) {
    const k = Math.floor((r.t - from) / w);
    const b = best.get(k);
    if (!b || value(r) > value(b)) best.set(k, r);
  }
  return [...best.values()].sort((a, b) => a.t - b.t);
}

const fmt = (x: number | null, unit: string, digits = 0) => (x === null || !Number.isFinite(x) ? '–' : `${x.toFixed(digits)} ${unit}`);

function title(text: string) {
  return { text, anchor: 'start', fontSize: 12, fontWeight: 600, offset: 4 };
}

function xEnc(domain: [number, number], axisTitle: string | null) {
  return { field: 't', type: 'quantitative', title: axisTitle, scale: { domain, nice: false, zero: false } };
}

function markerLayers(tl: Timeline, domain: [number, number], withLabels: boolean): Layer[] {
  const rows = tl.markers.filter((m) => m.t >= domain[0] && m.t <= domain[1]).map((m, i) => ({ t: m.t, kind: m.kind, row: i % 3 }));
  if (rows.length === 0) return [];
  const color = { field: 'kind', type: 'nominal', scale: { domain: KINDS, range: KINDS.map((k) => MARKER_COLORS[k]) }, legend: null };
  const layers: Layer[] = [
    { data: { values: rows }, mark: { type: 'rule', strokeWidth: 1.2, strokeDash: [4, 2] }, encoding: { x: xEnc(domain, null), color } },
  ];
  if (withLabels) {
    // labels near the right edge go to the left of their line, or they run into the legend
    const right = domain[0] + 0.85 * (domain[1] - domain[0]);
    for (const [side, dx] of [
      ['l', 3],
      ['r', -3],
    ] as const)
      layers.push({
        data: { values: rows },
        transform: [{ filter: `(datum.t > ${right}) === ${side === 'r'}` }, { calculate: '6 + 11 * datum.row', as: 'dy' }],
        mark: { type: 'text', align: side === 'l' ? 'left' : 'right', dx, baseline: 'top', fontSize: 10, fontWeight: 600 },
        encoding: { x: xEnc(domain, null), y: { field: 'dy', type: 'quantitative', scale: null }, text: { field: 'kind' }, color },
      });
  }
  return layers;
}

/** A panel with only a line of text (a panel without data says why). */
function notePanel(heading: string, note: string): Layer {
  return {
    title: title(heading),
    width: WIDTH,
    height: 24,
    data: { values: [{ note: `No data: ${note}.` }] },
    mark: { type: 'text', align: 'left', baseline: 'middle', fontStyle: 'italic', color: '#777' },
    encoding: { text: { field: 'note' }, x: { value: 0 }, y: { value: 12 } },
  };
}

function panel(heading: string, height: number, layers: Layer[], resolveColor = true): Layer {
  return {
    title: title(heading),
    width: WIDTH,
    height,
    layer: layers,
    ...(resolveColor ? { resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } } } : {}),
  };
}

function probeLayers(tl: Timeline, domain: [number, number], axisTitle: string | null, height: number): Layer[] {
  const x = xEnc(domain, axisTitle);
  const probe = maxPerBucket(
    tl.probe.filter((p) => p.t >= domain[0] && p.t <= domain[1]),
    (p) => p.rttMs,
    domain[0],
    domain[1],
  );
  const outages = tl.outages
    .filter((o) => o.t1 >= domain[0] && o.t0 <= domain[1])
    .map((o) => ({
      t: Math.max(o.t0, domain[0]),
      t1: Math.min(o.t1, domain[1]),
      label: `outage ${o.ms.toFixed(1)} ± ${+o.uncertaintyMs.toFixed(1)} ms (${o.lost} lost)`,
    }));
  const layers: Layer[] = [];
  if (outages.length)
    layers.push(
      {
        data: { values: outages },
        mark: { type: 'rect', color: '#d62728', opacity: 0.22 },
        encoding: { x, x2: { field: 't1' } },
      },
      {
        // only the longest outages are labelled, or short losses would cover the panel in text
        data: { values: [...outages].sort((a, b) => b.t1 - b.t - (a.t1 - a.t)).slice(0, 2) },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, dy: -3, fontSize: 10, color: '#a00' },
        encoding: { x, y: { value: height }, text: { field: 'label' } },
      },
    );
  if (probe.length)
    layers.push({
      data: { values: probe.map((p) => ({ t: p.t, rtt: p.rttMs })) },
      mark: { type: 'point', filled: true, size: 6, color: '#1f77b4', clip: true },
      encoding: { x, y: { field: 'rtt', type: 'quantitative', title: 'RTT (ms)' } },
    });
  return layers;
}

/** Power per host, thinned to the peak per time bucket when a fast poller recorded more than can be drawn. */
function powerRows(tl: Timeline): Row[] {
  const hosts = [...new Set(tl.power.map((p) => p.host))];
  return hosts.flatMap((h) =>
    maxPerBucket(
      tl.power.filter((p) => p.host === h),
      (p) => p.watts,
      tl.from - 2,
      tl.to + 2,
    ).map((p) => ({ t: p.t, watts: p.watts, host: `${p.host} (${p.role})` })),
  );
}

/** The vega-lite spec of a migration's timeline. */
export function timelineSpec(tl: Timeline): TopLevelSpec {
  const domain: [number, number] = [tl.from, tl.to];
  const x = xEnc(domain, null);
  const panels: Layer[] = [];
  const missing = (p: TimelinePanel) => tl.missing[p];

  // 1. transferred and remaining, passes as bands
  if (missing('bytes')) panels.push(notePanel('Transferred and remaining (MiB)', missing('bytes')!));
  else {
    const rows: Row[] = [];
    for (const b of tl.bytes) {
      rows.push({ t: b.t, series: 'transferred', mib: b.transferredMiB });
      if (b.remainingMiB !== null) rows.push({ t: b.t, series: 'remaining', mib: b.remainingMiB });
    }
    const span = domain[1] - domain[0];
    const bands = tl.passes.map((p) => ({ t: p.t0, t1: p.t1, odd: p.pass % 2, label: p.t1 - p.t0 > 0.06 * span ? `pass ${p.pass}` : '' }));
    panels.push(
      panel('Transferred and remaining (MiB); passes shaded', 150, [
        {
          data: { values: bands },
          mark: { type: 'rect' },
          encoding: {
            x,
            x2: { field: 't1' },
            opacity: { value: 0.5 },
            color: { field: 'odd', type: 'nominal', scale: { domain: [1, 0], range: ['#eeeeee', '#ffffff'] }, legend: null },
          },
        },
        {
          data: { values: bands },
          mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, fontSize: 10, color: '#666' },
          encoding: { x, y: { value: 150 }, text: { field: 'label' } },
        },
        {
          data: { values: rows },
          mark: { type: 'line', strokeWidth: 1.5, clip: true },
          encoding: {
            x,
            y: { field: 'mib', type: 'quantitative', title: 'MiB' },
            color: {
              field: 'series',
              type: 'nominal',
              title: null,
              scale: { domain: ['transferred', 'remaining'], range: ['#1f77b4', '#ff7f0e'] },
            },
          },
        },
        ...markerLayers(tl, domain, true),
      ]),
    );
  }

  // 2. throughput and the link rate as the physical limit
  if (missing('throughput')) panels.push(notePanel('Throughput (Mbit/s)', missing('throughput')!));
  else {
    const linkNote =
      tl.linkRateMbit === null
        ? '; link not shaped (no physical limit drawn)'
        : `; red dashes: link rate ${tl.linkRateMbit} Mbit/s, the physical limit`;
    const pts = [{ t: tl.throughput[0].t0, mbit: tl.throughput[0].mbit }, ...tl.throughput.map((s) => ({ t: s.t1, mbit: s.mbit }))];
    const layers: Layer[] = [
      {
        data: { values: pts },
        mark: { type: 'line', interpolate: 'step-before', strokeWidth: 1.2, color: '#1f77b4', clip: true },
        encoding: { x, y: { field: 'mbit', type: 'quantitative', title: 'Mbit/s' } },
      },
    ];
    if (tl.linkRateMbit !== null)
      layers.push({
        data: { values: [{ y: tl.linkRateMbit }] },
        mark: { type: 'rule', color: '#d62728', strokeDash: [6, 3], strokeWidth: 1.5 },
        encoding: { y: { field: 'y', type: 'quantitative' } },
      });
    panels.push(
      panel(`Throughput (Mbit/s, from transferred bytes over ≥ ${tl.throughputWindowS} s)${linkNote}`, 110, [
        ...layers,
        ...markerLayers(tl, domain, false),
      ]),
    );
  }

  // 3. dirty rate
  if (missing('dirty')) panels.push(notePanel('Dirty rate (MiB/s)', missing('dirty')!));
  else
    panels.push(
      panel('Dirty rate (MiB/s): QEMU estimate (4 KiB pages) and the guest workload', 100, [
        {
          data: { values: tl.dirty.map((d) => ({ t: d.t, mibs: d.mibS, source: d.source })) },
          mark: { type: 'line', point: { size: 12 }, strokeWidth: 1.2, clip: true },
          encoding: {
            x,
            y: { field: 'mibs', type: 'quantitative', title: 'MiB/s' },
            color: { field: 'source', type: 'nominal', title: null, scale: { domain: ['QEMU', 'guest'], range: ['#8c564b', '#17becf'] } },
          },
        },
        ...markerLayers(tl, domain, false),
      ]),
    );

  // 4. probe RTT with the outages shaded
  if (missing('probe')) panels.push(notePanel('Probe RTT (ms)', missing('probe')!));
  else
    panels.push(
      panel(`Probe RTT (ms), every ${tl.probeIntervalMs === null ? '?' : `${+tl.probeIntervalMs.toFixed(3)} ms`}; outages shaded`, 110, [
        ...probeLayers(tl, domain, null, 110),
        ...markerLayers(tl, domain, false),
      ]),
    );

  // 5. power of source and destination
  if (missing('power')) panels.push(notePanel('Power (W)', missing('power')!));
  else
    panels.push(
      panel('Power (W) of source and destination', 110, [
        {
          data: { values: powerRows(tl) },
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.2, clip: true },
          encoding: {
            x,
            y: { field: 'watts', type: 'quantitative', title: 'W', scale: { zero: false } },
            color: { field: 'host', type: 'nominal', title: null },
          },
        },
        ...markerLayers(tl, domain, false),
      ]),
    );

  // the shared time axis's title under the last panel
  panels.push({
    width: WIDTH,
    height: 1,
    data: { values: [{ t: domain[0] }] },
    mark: { type: 'tick', opacity: 0 },
    encoding: { x: { ...xEnc(domain, 'time since the migrate command (s)'), axis: { labels: false, ticks: false, domain: false } } },
  });

  // 6. zoom on the downtime: STOP -> RESUME and the probe outage at millisecond scale
  const zoom = zoomDomain(tl);
  if (zoom && tl.probe.length + tl.outages.length > 0)
    panels.push(
      panel(`Around the downtime (zoom, ${((zoom[1] - zoom[0]) * 1000).toFixed(0)} ms wide): probe RTT, outages and events`, 120, [
        ...probeLayers(tl, zoom, 'time since the migrate command (s)', 120),
        ...markerLayers(tl, zoom, true),
      ]),
    );

  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Timeline of migration ${tl.id}`, subtitle: subtitle(tl), anchor: 'start', subtitleFontSize: 11 },
    vconcat: panels,
    spacing: 14,
    config: { axis: { labelFontSize: 10, titleFontSize: 10 }, legend: { orient: 'right', labelFontSize: 10 }, view: { stroke: '#ddd' } },
  } as unknown as TopLevelSpec;
}

/** [STOP - 25 %, end of the downtime + 25 %] of the span from STOP (or the outage) to RESUME / the outage's end. */
export function zoomDomain(tl: Timeline): [number, number] | null {
  const stop = tl.markers.find((m) => m.kind === 'STOP')?.t;
  const resume = tl.markers.find((m) => m.kind === 'RESUME')?.t;
  const longest = [...tl.outages].sort((a, b) => b.ms - a.ms)[0];
  const starts = [stop, longest?.t0].filter((x): x is number => x !== undefined);
  const ends = [resume, longest?.t1].filter((x): x is number => x !== undefined);
  if (starts.length === 0 || ends.length === 0) return null;
  const a = Math.min(...starts),
    b = Math.max(...ends);
  const pad = Math.max(0.05, 0.25 * (b - a));
  return [a - pad, b + pad];
}

function subtitle(tl: Timeline): string[] {
  const mk = (k: MarkerKind) => tl.markers.find((m) => m.kind === k)?.t ?? null;
  const stop = mk('STOP'),
    resume = mk('RESUME');
  const end = mk(tl.status);
  const longest = tl.outages.length ? Math.max(...tl.outages.filter((o) => o.t0 >= 0).map((o) => o.ms), 0) : null;
  const sent = tl.bytes.at(-1)?.transferredMiB ?? null;
  return [
    `${tl.vm}: ${tl.src} → ${tl.dst}, ${tl.status}${tl.reason ? ` (${tl.reason})` : ''}; ${fmt(end, 's', 2)} to ${tl.status}; ` +
      `${fmt(sent, 'MiB', 1)} sent in ${tl.passes.length || '?'} passes; link ${fmt(tl.linkRateMbit, 'Mbit/s')}`,
    `STOP→RESUME ${stop !== null && resume !== null ? fmt((resume - stop) * 1000, 'ms', 1) : '–'}; longest probe outage ${fmt(longest, 'ms', 1)}` +
      ` (± ${fmt(tl.probeIntervalMs, 'ms', 1)}); times from t_cmd = ${new Date(tl.t0Ms).toISOString()}`,
  ];
}

export async function timelineSvg(tl: Timeline): Promise<string> {
  return renderSvg(timelineSpec(tl));
}
