import { numberOption, UsageError } from '../lib/cli.ts';
import type { ModelMetadata } from './artifact.ts';
import type { Calibration } from './calibration.ts';

/** How the training command turns training scores into the anomaly threshold. */
export const THRESHOLD_RULES = {
  'mean+std': 'mean + 1 standard deviation of the reconstruction errors of the normal training beats (the tutorial rule)',
  'max-accuracy':
    'the midpoint between adjacent reconstruction errors that classifies the whole training part (normal and anomalous beats) most accurately',
} as const;
export type ThresholdRule = keyof typeof THRESHOLD_RULES;

export function isThresholdRule(value: string): value is ThresholdRule {
  return Object.hasOwn(THRESHOLD_RULES, value);
}

export interface TrainingScores {
  readonly normal: readonly number[];
  readonly anomalous: readonly number[];
}

function meanPlusStd(scores: readonly number[]): number {
  const mean = scores.reduce((sum, s) => sum + s, 0) / scores.length;
  const variance = scores.reduce((sum, s) => sum + (s - mean) ** 2, 0) / scores.length;
  return mean + Math.sqrt(variance);
}

/** Sweeps every cut between two adjacent scores; ties keep the lowest such threshold. */
function maxAccuracy({ normal, anomalous }: TrainingScores): number {
  const all = [
    ...normal.map((score) => ({ score, anomalous: false })),
    ...anomalous.map((score) => ({ score, anomalous: true })),
  ].sort((a, b) => a.score - b.score);
  // Start with everything above the threshold (called anomalous): correct for the anomalous beats.
  let correct = anomalous.length;
  let best = { correct, threshold: all[0]!.score - 1e-9 };
  for (let i = 0; i < all.length; i++) {
    correct += all[i]!.anomalous ? -1 : 1;
    const next = all[i + 1]?.score;
    if (next !== undefined && next === all[i]!.score) continue;
    if (correct > best.correct) {
      best = { correct, threshold: next === undefined ? all[i]!.score : (all[i]!.score + next) / 2 };
    }
  }
  return best.threshold;
}

export function chooseThreshold(rule: ThresholdRule, scores: TrainingScores): number {
  return rule === 'mean+std' ? meanPlusStd(scores.normal) : maxAccuracy(scores);
}

/** The rule `--target-fpr R` applies, as metadata.json records it. */
export const TARGET_FPR_RULE = 'target-fpr';

/**
 * The threshold that calls a share `rate` of normal rows anomalous: the calibration's quantile with
 * that share of its rows above it. A rate below one calibration row cannot be told from zero.
 */
export function fprThreshold(calibration: Calibration, rate: number): ModelMetadata['threshold'] {
  checkTargetFpr(rate, calibration.rows);
  return {
    value: calibration.thresholdFor(rate),
    rule: TARGET_FPR_RULE,
    description: `the score that a share ${rate} of the calibration's normal rows score above: their false-positive rate`,
    targetFpr: rate,
  };
}

/** Refuses a false-positive rate finer than one row in `rows`: `rows` calibration rows cannot tell it from zero. */
export function checkTargetFpr(rate: number, rows: number): void {
  if (rate * rows < 1) {
    throw new UsageError(
      `--target-fpr ${rate} is finer than ${rows} calibration rows can tell: the smallest rate they resolve is one row, ` +
        `1/${rows} = ${(1 / rows).toPrecision(2)}; give a larger rate, a --threshold-rule, or more normal rows to calibrate on`,
    );
  }
}

/** --target-fpr: a false-positive rate between 0 and 1. */
export const targetFprOption = (value: string) => numberOption('target-fpr', value, (n) => n > 0 && n < 1, 'a rate between 0 and 1, e.g. 0.01');
