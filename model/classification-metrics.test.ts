import { describe, expect, it } from 'vitest';
import { classificationMetrics, rocAuc } from './classification-metrics.ts';

const example = (score: number, predictedAnomalous: boolean, anomalous: boolean) => ({ score, predictedAnomalous, anomalous });

describe('classificationMetrics', () => {
  it('counts the confusion matrix with anomalous as the positive class', () => {
    const m = classificationMetrics([
      example(0.9, true, true),
      example(0.8, true, false),
      example(0.1, false, false),
      example(0.2, false, false),
      example(0.3, false, true),
    ]);
    expect(m.confusionMatrix).toEqual({ truePositives: 1, falsePositives: 1, trueNegatives: 2, falseNegatives: 1 });
    expect(m.accuracy).toBeCloseTo(3 / 5);
    expect(m.anomalous).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(m.normal.precision).toBeCloseTo(2 / 3);
    expect(m.normal.recall).toBeCloseTo(2 / 3);
    expect(m.normal.support).toBe(3);
  });
});

describe('rocAuc', () => {
  it('is 1 for a perfect ranking, 0 for a reversed one, and counts ties half', () => {
    expect(rocAuc([example(1, true, true), example(0, false, false)])).toBe(1);
    expect(rocAuc([example(0, true, true), example(1, false, false)])).toBe(0);
    expect(rocAuc([example(1, true, true), example(1, false, false)])).toBe(0.5);
    // 3 anomalous × 2 normal pairs; the anomalous 0.4 is below the normal 0.5: 5 of 6 ordered right.
    const scores = [example(0.9, true, true), example(0.7, true, true), example(0.4, false, true), example(0.5, false, false), example(0.1, false, false)];
    expect(rocAuc(scores)).toBeCloseTo(5 / 6);
  });
});
