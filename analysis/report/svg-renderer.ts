/**
 * Renders vega-lite specs to SVG in a worker thread (svg-worker.ts), so the
 * main thread builds the report's tables and HTML meanwhile. Starting one
 * takes ~0.3 s plus ~0.4 s for vega's import in the worker (then `ready`),
 * then ~0.45 s of warm-up charts (renders wait for them): start it early and
 * hand it to writeReport. That start is CPU work: on 2 cores it slowed a
 * load + analysis running meanwhile (itself on two threads) by ~0.5 s, more
 * than the ~0.15-0.2 s it saves in the report; start it when a core is idle.
 *
 * Its SVGs are those of renderSvg in a fresh process: vega's clip-path and
 * gradient ids count per JS realm, and the worker renders every spec of its
 * calls one at a time in the order of the calls. A renderer that has drawn
 * before goes on counting, as one process does; use a fresh one per report
 * for a report identical to `migbench report`'s.
 */
import type { TopLevelSpec } from 'vega-lite';
import { TsWorker } from '../../harness/util/ts-worker.ts';
import type { RenderReply } from './svg-worker.ts';

/** vega (or vega-lite) rejected a spec: `index` is its place in the call's specs. The worker goes on serving. */
export class SvgRenderError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`vega could not render spec ${index}: ${reason}`);
    this.name = 'SvgRenderError';
  }
}

export class SvgRenderer {
  /** Resolves once vega is loaded in the worker; rejects when the worker cannot start. */
  readonly ready: Promise<void>;

  private constructor(private readonly worker: TsWorker) {
    this.ready = worker.ready;
  }

  /** Starts the worker (it imports vega and vega-lite); idle, it does not keep the process alive. */
  static start(): SvgRenderer {
    return new SvgRenderer(new TsWorker(new URL('./svg-worker.ts', import.meta.url), 'svg-render'));
  }

  /**
   * The SVGs of `specs`, in order. Rejects with SvgRenderError when vega
   * rejects one of them, with the worker's error ('svg-render worker ...')
   * when the worker cannot start or dies.
   */
  async render(specs: readonly TopLevelSpec[]): Promise<string[]> {
    const r = await this.worker.call<RenderReply>('render', specs);
    if ('failed' in r) throw new SvgRenderError(r.failed, r.message);
    return r.svgs;
  }

  /** Ends the worker; pending renders fail. */
  close(): Promise<void> {
    return this.worker.close();
  }
}
