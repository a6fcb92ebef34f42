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

/** An output's value, by its role, for one score: a number or a boolean, or an instance's values. */
export function outputValue(role: OutputRole, score: Score): number | boolean | number[] {
  switch (role) {
    case 'score':
      return score.reconstructionError;
    case 'verdict':
      return score.isAnomaly;
    case 'reconstruction':
      return score.reconstruction!;
    case 'attribution':
      return score.attribution!;
    case 'p_value':
      return score.pValue!;
  }
}

/**
 * An output's values for a request's scores, flat, as a tensor holds them: one a score for an
 * output of shape [-1], an instance's values a score for one of the input's shape.
 */
export function outputValues({ role, shape }: { readonly role: OutputRole; readonly shape: readonly number[] }, scores: readonly Score[]): (number | boolean)[] {
  // flatMap, five times map's cost on scalars, only where there is something to flatten.
  return shape.length === 1 ? scores.map((score) => outputValue(role, score) as number | boolean) : scores.flatMap((score) => outputValue(role, score) as number[]);
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
