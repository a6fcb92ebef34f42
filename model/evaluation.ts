import type { Detector } from './detector.ts';
import type { Evaluation } from './artifact.ts';
import { classificationMetrics, falsePositiveRateOf, type Scored } from './classification-metrics.ts';
import { DataFileError, isAnomalous, type LabelledData } from './data.ts';

/** The test rows recorded in the model's metadata, once the data is checked to be the file it was trained on. */
export function testSplitRows(detector: Detector, data: LabelledData, file: string): readonly number[] {
  const { split } = detector.metadata;
  if (!split) throw new DataFileError(`${file}: the model's metadata.json records no split (it was not trained by npm run train), so there is no test split to evaluate`);
  if (data.sha256 !== split.dataSha256) {
    throw new DataFileError(
      `${file}: this is not the data file the model was trained on (sha256 ${data.sha256.slice(0, 12)}…, ` +
        `the model's split is of ${split.dataSha256.slice(0, 12)}…), so its recorded test split does not apply`,
    );
  }
  return split.testRowIndices;
}

/** The evaluation of the test split recorded in the model's metadata (see testSplitRows). */
export const evaluateTestSplit = (detector: Detector, data: LabelledData, file: string): Evaluation => evaluateRows(detector, data, testSplitRows(detector, data, file));

/** Scores some rows of the data (by index) with the detector, as the server does, beside their labels. */
export function scoreRows(detector: Detector, data: LabelledData, rows: readonly number[]): Scored[] {
  return detector.score(rows.map((row) => data.rows[row]!)).map((score, i) => ({
    score: score.reconstructionError,
    predictedAnomalous: score.isAnomaly,
    anomalous: isAnomalous(data, rows[i]!),
  }));
}

/** Scores some rows of the data (by index) with the detector, as the server does, and measures the verdicts against their labels. */
export const evaluateRows = (detector: Detector, data: LabelledData, rows: readonly number[]): Evaluation => classificationMetrics(scoreRows(detector, data, rows));

const percent = (value: number) => `${(100 * value).toFixed(2)}%`.padStart(8);
const classRow = (name: string, { precision, recall, f1, support }: Evaluation['normal']) =>
  `${name.padEnd(10)} ${percent(precision)}  ${percent(recall)}  ${percent(f1)}  ${String(support).padStart(8)}`;

/** A plain-text table of an evaluation, for people. */
export function formatEvaluation(evaluation: Evaluation): string {
  const { anomalous, normal, confusionMatrix: m } = evaluation;
  return [
    `test rows  ${evaluation.rows}`,
    `accuracy   ${percent(evaluation.accuracy)}`,
    `at the threshold: false-positive rate ${percent(falsePositiveRateOf(evaluation)).trim()}, recall ${percent(anomalous.recall).trim()}`,
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
