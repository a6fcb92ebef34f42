import type { Batcher } from './batcher.ts';
import type { OutputRole } from '../model/artifact.ts';
import type { Detector, Score, ScoreOptions } from '../model/detector.ts';
import { NotFoundError, NotReadyError } from './errors.ts';

/** What the protocol adapters see of the process lifecycle (owned by server.ts). */
export interface ServingState {
  /** The model and its batcher, once loaded. */
  readonly model: LoadedModel | undefined;
  /** Set when the process has been told to stop: it still serves, but is no longer ready. */
  readonly draining: boolean;
}

export interface LoadedModel {
  readonly detector: Detector;
  readonly batcher: Batcher;
}

/** The values of an output, by its role, for a request's scores: what both protocols answer. */
export function outputValues(role: OutputRole, scores: readonly Score[]): (number | boolean)[] {
  switch (role) {
    case 'score':
      return scores.map((s) => s.reconstructionError);
    case 'verdict':
      return scores.map((s) => s.isAnomaly);
    case 'reconstruction':
      return scores.flatMap((s) => s.reconstruction!);
    case 'attribution':
      return scores.flatMap((s) => s.attribution!);
    case 'p_value':
      return scores.map((s) => s.pValue!);
  }
}

/** What the detector computes besides the score and the verdict for a request asking for outputs of `roles`. */
export const scoreOptionsFor = (roles: readonly OutputRole[]): ScoreOptions => ({
  reconstruction: roles.includes('reconstruction'),
  attribution: roles.includes('attribution'),
  pValue: roles.includes('p_value'),
});

/** The JSON arrays and objects an instance of the model may take: a row and its naming object, and a window's list a step. */
export const containersPerInstance = (detector: Detector) => 2 + (detector.dims.length === 2 ? detector.dims[0] : 0);

export function isReady(state: ServingState): boolean {
  return state.model !== undefined && !state.draining;
}

/** The served model, if `requested` names it (and `version`, when given, is its version) and it is loaded. */
export function requireModel(
  state: ServingState,
  served: string,
  requested: string,
  version?: { requested: string; of: (detector: Detector) => string },
): LoadedModel {
  if (requested !== served) throw new NotFoundError(`model "${requested}" is not served here; this server serves "${served}"`);
  if (!state.model) throw new NotReadyError(`model "${served}" is still loading`);
  const actual = version?.of(state.model.detector);
  if (version && version.requested !== actual) {
    throw new NotFoundError(`model "${served}" has no version "${version.requested}"; it serves version "${actual}"`);
  }
  return state.model;
}
