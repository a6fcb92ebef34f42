import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import { scoreOf } from '../../model/artifact.ts';
import { PATHS } from '../contract.ts';
import { NotReadyError } from '../errors.ts';
import type { ServingState } from '../serving.ts';

/** The files of the page, read once: they sit beside this module in the source and in build/. */
const asset = (name: string) => readFileSync(new URL(name, import.meta.url), 'utf8');
const PAGE = asset('index.html');
const SCRIPT = asset('app.js');

export interface UiDeps {
  readonly state: ServingState;
  readonly modelName: string;
}

/**
 * GET / (the page), its script, and the model's facts that the page and the load test read: its
 * name, version, signature, calibration size, normalisation and example rows.
 */
export function uiRoutes({ state, modelName }: UiDeps): Hono {
  const app = new Hono();
  app.get(PATHS.page, (c) => c.html(PAGE));
  app.get(PATHS.pageScript, (c) => c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }));
  app.get(PATHS.pageModel, (c) => {
    if (!state.model) throw new NotReadyError('the model is still loading');
    const { detector } = state.model;
    return c.json({
      name: modelName,
      version: detector.version,
      backend: detector.backend,
      threshold: detector.threshold,
      score: scoreOf(detector.metadata),
      signature: detector.signature,
      // For the p-value in words: how many normal rows it is a share of.
      calibrationRows: detector.calibration?.rows,
      normalisation: detector.metadata.normalisation,
      examples: detector.metadata.examples ?? [],
    });
  });
  return app;
}
