import { describe, expect, it } from 'vitest';
import { Calibration, calibrationRecord } from '../model/calibration.ts';
import { bundledMetadata } from '../test/bundled-model.ts';
import { createMetrics, METRIC, scoreBuckets } from './metrics.ts';

/** The bucket bounds a registry exports for the score histogram. */
async function exportedBuckets(buckets: readonly number[]): Promise<number[]> {
  const { registry } = createMetrics({ scoreBuckets: buckets });
  const text = await registry.getSingleMetricAsString(METRIC.reconstructionError);
  return [...text.matchAll(/_bucket\{le="([^"]+)"\}/g)].map((match) => Number(match[1])).filter(Number.isFinite);
}

describe('the score histogram\'s buckets', () => {
  it('span the bundled model\'s normal scores and its anomalies: from the calibration\'s 1st percentile to 20 times the threshold', async () => {
    const calibration = new Calibration(bundledMetadata.calibration!);
    const buckets = scoreBuckets(bundledMetadata.threshold.value, calibration);
    expect(buckets).toHaveLength(16);
    expect(buckets[0]).toBeCloseTo(calibration.quantile(0.01), 3);
    expect(buckets.at(-1)).toBeCloseTo(20 * bundledMetadata.threshold.value, 2);
    // Ascending, two significant digits, and about half of them where normal beats score.
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    expect(buckets.every((bound) => Number(bound.toPrecision(2)) === bound)).toBe(true);
    expect(buckets.filter((bound) => bound <= bundledMetadata.threshold.value).length).toBeGreaterThanOrEqual(5);
    expect(await exportedBuckets(buckets)).toEqual(buckets);
  });

  it('follow a model whose scores are of another size: a thousand times the bundled one\'s, or without a calibration', () => {
    const scores = Array.from({ length: 500 }, (_, i) => 10 + i / 10);
    const large = scoreBuckets(60, new Calibration(calibrationRecord(scores, 'large')));
    expect(large[0]).toBe(10); // the 1st percentile, 10.5, to two digits
    expect(large.at(-1)).toBe(1200);
    const uncalibrated = scoreBuckets(2, undefined);
    expect([uncalibrated[0], uncalibrated.at(-1)]).toEqual([0.2, 40]);
  });

  it('fall back to the bundled scale for a threshold of 0, which has no scale', () => {
    expect(scoreBuckets(0, undefined)).toEqual(scoreBuckets(0, new Calibration(calibrationRecord([0, 0, 0], 'zeros'))));
    expect(scoreBuckets(0, undefined)[0]).toBe(0.005);
  });
});
