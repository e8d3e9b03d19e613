/**
 * The worker behind SvgRenderer (svg-renderer.ts): renders vega-lite specs to
 * SVG with renderSvg, off the main thread. vega and vega-lite are imported
 * before it serves, so the renderer's `ready` means they are loaded.
 *
 * Calls are rendered one spec at a time in the order they arrive (a queue),
 * never interleaved: vega numbers clip-path and gradient ids with counters
 * per JS realm, so a fresh worker that renders the report's specs in the
 * report's order writes the same ids as a fresh process rendering them does.
 *
 * While the caller still reads and analyses the run, the worker draws a few
 * small charts of the kinds in the report, so vega's code is compiled
 * (optimised) before the report's figures come: the first render of a fresh
 * vega took about twice as long as the next one. Then vega's ids are reset
 * to where a fresh vega's start (resetSVGDefIds); calls wait for this.
 */
import type { TopLevelSpec } from 'vega-lite';
import { serveCalls } from '../../harness/util/ts-worker.ts';
import { loadVega, renderSvg } from './svg.ts';

/** The render job's answer: the SVGs in order, or which spec vega rejected and why. */
export type RenderReply = { svgs: string[] } | { failed: number; message: string };

async function renderAll(specs: readonly TopLevelSpec[]): Promise<RenderReply> {
  const svgs: string[] = [];
  for (const [i, spec] of specs.entries()) {
    try {
      svgs.push(await renderSvg(spec));
    } catch (e) {
      return { failed: i, message: e instanceof Error ? e.message : String(e) };
    }
  }
  return { svgs };
}

/** Small charts with the report's marks, facets, layers, legends (nominal and gradient) and clipping. */
function warmUpSpecs(): TopLevelSpec[] {
  const rows = Array.from({ length: 120 }, (_, i) => ({
    x: i,
    y: ((i * 37) % 101) / 7,
    g: ['a', 'b', 'c'][i % 3],
    f: ['p', 'q'][i % 2],
    v: (i * 13) % 17,
  }));
  const x = { field: 'x', type: 'quantitative', title: 'x' } as const;
  const y = { field: 'y', type: 'quantitative', title: 'y' } as const;
  return [
    {
      data: { values: rows },
      facet: { column: { field: 'f', type: 'nominal', title: null } },
      spec: {
        width: 150,
        height: 100,
        layer: [
          { mark: { type: 'rect', opacity: 0.15 }, encoding: { x, x2: { field: 'v' } } },
          { mark: { type: 'line', clip: true, interpolate: 'step-after' }, encoding: { x, y, color: { field: 'g', type: 'nominal' } } },
          { mark: { type: 'point', filled: true, clip: true }, encoding: { x, y, color: { field: 'g', type: 'nominal' } } },
          { mark: { type: 'rule' }, encoding: { y: { aggregate: 'mean', field: 'y', type: 'quantitative' } } },
          { mark: { type: 'tick', thickness: 2 }, encoding: { x, y } },
        ],
      },
    },
    {
      title: { text: 'warm-up', subtitle: ['a', 'b'], anchor: 'start' },
      vconcat: [
        {
          data: { values: rows },
          facet: { row: { field: 'f', type: 'nominal', title: null, header: { labelAngle: 0 } } },
          spec: {
            width: 150,
            layer: [
              {
                mark: 'rect',
                encoding: {
                  x: { field: 'g', type: 'nominal' },
                  y: { field: 'v', type: 'ordinal' },
                  color: { field: 'y', aggregate: 'mean', type: 'quantitative' },
                },
              },
              {
                mark: { type: 'text', fontSize: 9 },
                encoding: {
                  x: { field: 'g', type: 'nominal' },
                  y: { field: 'v', type: 'ordinal' },
                  text: { field: 'y', aggregate: 'mean', format: '.1f' },
                },
              },
            ],
          },
        },
        {
          data: { values: rows },
          width: 150,
          height: 60,
          transform: [{ filter: 'datum.x > 10' }, { calculate: 'datum.y * 2', as: 'y2' }],
          mark: { type: 'bar', cornerRadius: 2 },
          encoding: { x: { field: 'g', type: 'nominal' }, y: { field: 'y2', aggregate: 'sum', type: 'quantitative' } },
        },
      ],
    },
  ] as TopLevelSpec[];
}

const { vega } = await loadVega();
let queue: Promise<unknown> = renderAll(warmUpSpecs()).then(() => vega.resetSVGDefIds());
serveCalls({
  render: (specs: TopLevelSpec[]) => {
    const r = queue.then(() => renderAll(specs));
    queue = r;
    return r;
  },
});
