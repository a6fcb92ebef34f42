import { numberOption, UsageError } from '../lib/cli.ts';
import type { Logger } from '../lib/logger.ts';
import { isScoreFunction, nameSchema, SCORE_FUNCTIONS, type ScoreFunction } from './artifact.ts';
import { fallbackNotice, isBackendName, selectBackend, type BackendName } from './backend.ts';
import type { LabelLayout } from './data.ts';

/** The options the model commands share (the generic command-line plumbing is lib/cli.ts). */

/** The data set the project trains on, when neither --data nor ECG_CSV names another. */
export const DEFAULT_ECG_CSV = '../shared/data/ecg5000/ecg.csv';

export function defaultDataPath(): string {
  return process.env.ECG_CSV || DEFAULT_ECG_CSV;
}

type LabelOptions = { readonly 'label-column'?: string; readonly 'normal-label'?: string };

/** --label-column (1-based, "last", or with `unlabelled`, "none": every row normal) and --normal-label. */
export function labelLayoutOption(options: LabelOptions, mode: { unlabelled: false }): LabelLayout & { readonly labelColumn: number | 'last' };
export function labelLayoutOption(options: LabelOptions, mode: { unlabelled: boolean }): LabelLayout;
export function labelLayoutOption(options: LabelOptions, { unlabelled }: { unlabelled: boolean }): LabelLayout {
  const column = options['label-column'];
  const labelColumn =
    column === 'last' || (unlabelled && column === 'none')
      ? column
      : numberOption('label-column', column, (n) => Number.isInteger(n) && n > 0, unlabelled ? 'a column number from 1, "last" or "none"' : 'a column number from 1, or "last"');
  return { labelColumn, normalLabel: numberOption('normal-label', options['normal-label'], Number.isFinite, 'a number') };
}

/** The usage lines of --score, for the commands that take it. */
export const SCORE_USAGE = `  --score ${Object.keys(SCORE_FUNCTIONS).join(' | ')}      how a row is scored: its mean absolute (mae) or mean squared (mse) error
                         between the scaled row and its reconstruction (default: mae)`;

/** --score: the model's score function. */
export function scoreOption(value: string | undefined): ScoreFunction {
  const score = value ?? 'mae';
  if (!isScoreFunction(score)) throw new UsageError(`--score must be one of ${Object.keys(SCORE_FUNCTIONS).join(', ')}, got ${JSON.stringify(value)}`);
  return score;
}

/** Checks options that name something in URLs and requests (--name, --input-name) against nameSchema. */
export function checkNameOptions<K extends string>(options: Readonly<Partial<Record<K, string | boolean | undefined>>>, keys: readonly K[]): void {
  for (const key of keys) {
    const checked = nameSchema.safeParse(options[key]);
    if (!checked.success) throw new UsageError(`--${key} must be ${checked.error.issues[0]!.message}; got ${JSON.stringify(options[key])}`);
  }
}

/** The backend named by BACKEND, or the fastest available one (saying so when it is not native). */
export async function backendFromEnvironment(logger: Logger): Promise<BackendName> {
  const requested = process.env.BACKEND || undefined;
  if (requested !== undefined && !isBackendName(requested)) {
    throw new UsageError(`BACKEND must be tensorflow, wasm or cpu, got ${JSON.stringify(requested)}`);
  }
  const choice = await selectBackend(requested);
  const notice = fallbackNotice(choice);
  if (notice) logger.warn({ backend: choice.backend, skipped: choice.skipped }, notice);
  return choice.backend;
}
