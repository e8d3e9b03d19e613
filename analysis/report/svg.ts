/**
 * Renders a vega-lite spec to an SVG string headlessly (no canvas, no
 * browser). vega and vega-lite are imported on the first render (~0.4 s),
 * so commands that draw nothing do not pay for them.
 */
import type { TopLevelSpec } from 'vega-lite';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');

let libs: Promise<{ vega: Vega; vegaLite: VegaLite }> | null = null;

/** vega and vega-lite, imported once (the first call starts the import; later calls share it). */
export function loadVega(): Promise<{ vega: Vega; vegaLite: VegaLite }> {
  libs ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vegaLite]) => ({ vega, vegaLite }));
  return libs;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vegaLite } = await loadVega();
  const vg = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
