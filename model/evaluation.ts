import type { Detector } from './detector.ts';
import type { Evaluation } from './artifact.ts';
import { classificationMetrics } from './classification-metrics.ts';
import { DataFileError, isAnomalous, type LabelledData } from './data.ts';

/**
 * Scores the test split recorded in the model's metadata with the detector, exactly as the server
 * scores requests, and measures the verdicts against the labels.
 */
export function evaluateTestSplit(detector: Detector, data: LabelledData, file: string): Evaluation {
  const { split } = detector.metadata;
  if (!split) throw new DataFileError(`${file}: the model's metadata.json records no split (it was not trained by npm run train), so there is no test split to evaluate`);
  if (data.sha256 !== split.dataSha256) {
    throw new DataFileError(
      `${file}: this is not the data file the model was trained on (sha256 ${data.sha256.slice(0, 12)}…, ` +
        `the model's split is of ${split.dataSha256.slice(0, 12)}…), so its recorded test split does not apply`,
    );
  }
  return evaluateRows(detector, data, split.testRowIndices);
}

/** Scores some rows of the data (by index) with the detector, as the server does, and measures the verdicts against their labels. */
export function evaluateRows(detector: Detector, data: LabelledData, rows: readonly number[]): Evaluation {
  const scores = detector.score(rows.map((row) => data.rows[row]!));
  return classificationMetrics(
    scores.map((score, i) => ({
      score: score.reconstructionError,
      predictedAnomalous: score.isAnomaly,
      anomalous: isAnomalous(data, rows[i]!),
    })),
  );
}

const percent = (value: number) => `${(100 * value).toFixed(2)}%`.padStart(8);
const classRow = (name: string, { precision, recall, f1, support }: Evaluation['normal']) =>
  `${name.padEnd(10)} ${percent(precision)}  ${percent(recall)}  ${percent(f1)}  ${String(support).padStart(8)}`;

/** A plain-text table of an evaluation, for people. */
export function formatEvaluation(evaluation: Evaluation): string {
  const { anomalous, normal, confusionMatrix: m } = evaluation;
  return [
    `test rows  ${evaluation.rows}`,
    `accuracy   ${percent(evaluation.accuracy)}`,
    `ROC AUC    ${evaluation.rocAuc.toFixed(4).padStart(8)}`,
    '',
    'class        precision    recall        F1   support',
    classRow('anomalous', anomalous),
    classRow('normal', normal),
    '',
    'confusion matrix      predicted anomalous   predicted normal',
    `actually anomalous    ${String(m.truePositives).padStart(19)}   ${String(m.falseNegatives).padStart(16)}`,
    `actually normal       ${String(m.falsePositives).padStart(19)}   ${String(m.trueNegatives).padStart(16)}`,
  ].join('\n');
}
