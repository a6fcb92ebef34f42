import type { Evaluation } from './artifact.ts';

/** One scored example: its anomaly score, the verdict, and whether it really is anomalous. */
export interface Scored {
  readonly score: number;
  readonly predictedAnomalous: boolean;
  readonly anomalous: boolean;
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function classMetrics(truePositives: number, falsePositives: number, falseNegatives: number) {
  const precision = ratio(truePositives, truePositives + falsePositives);
  const recall = ratio(truePositives, truePositives + falseNegatives);
  return {
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    support: truePositives + falseNegatives,
  };
}

/**
 * The area under the ROC curve of the score as a detector of anomalous examples: the probability
 * that a random anomalous example scores above a random normal one (ties count half).
 */
export function rocAuc(examples: readonly Scored[]): number {
  const sorted = [...examples].sort((a, b) => a.score - b.score);
  let rankSumAnomalous = 0;
  for (let start = 0; start < sorted.length; ) {
    let end = start;
    while (end < sorted.length && sorted[end]!.score === sorted[start]!.score) end++;
    const averageRank = (start + 1 + end) / 2;
    for (let i = start; i < end; i++) if (sorted[i]!.anomalous) rankSumAnomalous += averageRank;
    start = end;
  }
  const anomalous = examples.filter((e) => e.anomalous).length;
  const normal = examples.length - anomalous;
  return ratio(rankSumAnomalous - (anomalous * (anomalous + 1)) / 2, anomalous * normal);
}

/** Accuracy, per-class precision / recall / F1, ROC AUC and the confusion matrix (anomalous = positive). */
export function classificationMetrics(examples: readonly Scored[]): Evaluation {
  let truePositives = 0;
  let falsePositives = 0;
  let trueNegatives = 0;
  let falseNegatives = 0;
  for (const { predictedAnomalous, anomalous } of examples) {
    if (predictedAnomalous && anomalous) truePositives++;
    else if (predictedAnomalous) falsePositives++;
    else if (anomalous) falseNegatives++;
    else trueNegatives++;
  }
  return {
    rows: examples.length,
    accuracy: ratio(truePositives + trueNegatives, examples.length),
    falsePositiveRate: ratio(falsePositives, falsePositives + trueNegatives),
    rocAuc: rocAuc(examples),
    anomalous: classMetrics(truePositives, falsePositives, falseNegatives),
    normal: classMetrics(trueNegatives, falseNegatives, falsePositives),
    confusionMatrix: { truePositives, falsePositives, trueNegatives, falseNegatives },
  };
}

/** A point of the ROC and precision-recall curves: the rates of calling every score above `threshold` anomalous. */
export interface CurvePoint {
  readonly threshold: number;
  readonly falsePositiveRate: number;
  /** The true-positive rate (recall). */
  readonly recall: number;
  readonly precision: number;
}

/**
 * The ROC and precision-recall curves of the score: one point a distinct score, from the highest
 * threshold (nothing called anomalous) down to below the lowest (everything), as scikit-learn's
 * roc_curve and precision_recall_curve compute them.
 */
export function curves(examples: readonly Scored[]): CurvePoint[] {
  const sorted = [...examples].sort((a, b) => b.score - a.score);
  const anomalous = examples.filter((e) => e.anomalous).length;
  const normal = examples.length - anomalous;
  const points: CurvePoint[] = [{ threshold: sorted[0]?.score ?? 0, falsePositiveRate: 0, recall: 0, precision: 1 }];
  let truePositives = 0;
  let falsePositives = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.anomalous) truePositives++;
    else falsePositives++;
    const next = sorted[i + 1]?.score;
    if (next === sorted[i]!.score) continue;
    points.push({
      // Scores above the midpoint to the next lower score are called anomalous.
      threshold: next === undefined ? sorted[i]!.score / 2 : (sorted[i]!.score + next) / 2,
      falsePositiveRate: ratio(falsePositives, normal),
      recall: ratio(truePositives, anomalous),
      precision: ratio(truePositives, truePositives + falsePositives),
    });
  }
  return points;
}

/**
 * An evaluation's false-positive rate: as recorded, or from its confusion matrix for an evaluation
 * recorded before the rate was.
 */
export const falsePositiveRateOf = ({ falsePositiveRate, confusionMatrix: { falsePositives, trueNegatives } }: Evaluation): number =>
  falsePositiveRate ?? ratio(falsePositives, falsePositives + trueNegatives);
