import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeIf } from '../test/describe-if.ts';
import { Calibration, CALIBRATION_SCORES_KEPT, calibrationRecord, calibrationSchema } from './calibration.ts';

const scores = fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 2, maxLength: 300 });
const calibrated = (values: readonly number[]) => new Calibration(calibrationRecord(values, 'test'));
const atOrAbove = (values: readonly number[], x: number) => values.filter((v) => v >= x).length / values.length;

/** A seeded normal sample (mulberry32, Box-Muller), folded to scores of 0 or more. */
function sample(n: number, seed: number, shift = 0): number[] {
  let state = seed;
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4_294_967_298;
  };
  return Array.from({ length: n }, () => Math.abs(shift + Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform())));
}

describe('Calibration', () => {
  it('gives each score the share of calibration scores at or above it, a p-value that never rises with the score', () => {
    fc.assert(
      fc.property(scores, fc.double({ min: -1, max: 11, noNaN: true }), fc.double({ min: -1, max: 11, noNaN: true }), (values, x, y) => {
        const calibration = calibrated(values);
        expect(calibration.pValue(x)).toBe(atOrAbove(values, x));
        if (x <= y) expect(calibration.pValue(x)).toBeGreaterThanOrEqual(calibration.pValue(y));
      }),
    );
  });

  it('sets the threshold for a false-positive rate at the lowest score with at most that share of the calibration above it', () => {
    fc.assert(
      fc.property(scores, fc.double({ min: 0, max: 0.999, noNaN: true }), (values, r) => {
        const calibration = calibrated(values);
        const rate = Math.max(r, calibration.resolution);
        const threshold = calibration.thresholdFor(rate);
        const above = (t: number) => values.filter((v) => v > t).length / values.length;
        expect(calibration.expectedRate(threshold)).toBe(above(threshold));
        expect(above(threshold)).toBeLessThanOrEqual(rate + 1e-12);
        // Any lower calibration score would call more than that share anomalous.
        const lower = values.filter((v) => v < threshold);
        if (lower.length > 0) expect(above(Math.max(...lower))).toBeGreaterThan(rate);
      }),
    );
  });

  it('records a score past FP32\'s range, or NaN, as FP32\'s largest value, as the server answers it: still valid JSON', () => {
    const record = calibrationRecord([0.1, Infinity, Number.NaN], 'overflowed');
    expect(record.scores).toEqual([0.1, 3.4028234663852886e38, 3.4028234663852886e38]);
    expect(calibrationSchema.parse(JSON.parse(JSON.stringify(record)))).toEqual(record);
  });

  it('refuses a rate finer than one calibration row', () => {
    expect(() => calibrated([1, 2, 3, 4]).thresholdFor(0.2)).toThrow(/from 0\.25 \(one row in 4\)/);
  });

  it(`keeps up to ${CALIBRATION_SCORES_KEPT} scores as they are, and quantiles of more that read tail probabilities to about 1e-4`, () => {
    const small = calibrationRecord(sample(CALIBRATION_SCORES_KEPT, 1), 'small');
    expect(small.probabilities).toBeUndefined();
    expect(calibrationSchema.parse(small)).toEqual(small);
    const values = sample(200_000, 7);
    const large = calibrationRecord(values, 'large');
    expect(large.rows).toBe(200_000);
    expect(large.scores.length).toBeLessThan(200);
    expect(calibrationSchema.parse(large)).toEqual(large);
    const calibration = new Calibration(large);
    const sorted = [...values].sort((a, b) => a - b);
    for (const tail of [0.5, 0.1, 0.01, 1e-3, 1e-4]) {
      const score = sorted[Math.floor((1 - tail) * sorted.length)]!;
      expect(Math.abs(calibration.pValue(score) - atOrAbove(values, score)) / tail).toBeLessThan(0.05);
      expect(Math.abs(calibration.expectedRate(calibration.thresholdFor(tail)) - tail) / tail).toBeLessThan(0.05);
    }
    expect(calibration.pValue(sorted.at(-1)! + 1)).toBe(0);
  });

  it('rejects records that contradict themselves', () => {
    expect(calibrationSchema.safeParse({ rows: 3, source: 's', scores: [2, 1, 3] }).success).toBe(false);
    expect(calibrationSchema.safeParse({ rows: 4, source: 's', scores: [1, 2, 3] }).success).toBe(false);
    expect(calibrationSchema.safeParse({ rows: 5000, source: 's', scores: [1, 2, 3], probabilities: [0, 0.4, 0.9] }).success).toBe(false);
  });

  it('finds no drift in a sample of the calibration\'s own distribution, and drift in a shifted one', () => {
    const calibration = calibrated(sample(1000, 3));
    const same = calibration.kolmogorovSmirnov(sample(1000, 11));
    expect(same.pValue).toBeGreaterThan(0.01);
    const shifted = calibration.kolmogorovSmirnov(sample(1000, 11, 1));
    expect(shifted.pValue).toBeLessThan(1e-6);
    expect(shifted.statistic).toBeGreaterThan(same.statistic);
    expect(calibration.kolmogorovSmirnov([])).toEqual({ statistic: 0, pValue: 1 });
  });
});

/** Whether python3 has scipy: the reference for the Kolmogorov-Smirnov test. */
const hasScipy = (() => {
  try {
    execFileSync('python3', ['-c', 'import scipy.stats'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describeIf(hasScipy, 'python3 has no scipy: apt-get install -y python3-scipy', 'the Kolmogorov-Smirnov test against scipy', () => {
  it('has scipy\'s statistic (ks_2samp) and the asymptotic p-value of it (kstwobign.sf of √(nm/(n+m))·D), on samples of every kind', () => {
    const cases = fc.sample(
      fc.tuple(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 400 }),
        fc.array(fc.double({ min: 0, max: 1.5, noNaN: true }), { minLength: 1, maxLength: 400 }),
      ),
      { numRuns: 60, seed: 42 },
    );
    // Ties too: scores on a coarse grid.
    cases.push([sample(300, 5).map((v) => Math.round(v * 4) / 4), sample(200, 6, 0.3).map((v) => Math.round(v * 4) / 4)]);
    const script = [
      'import json, sys, math',
      'from scipy.stats import ks_2samp, kstwobign',
      'out = []',
      'for a, b in json.load(sys.stdin):',
      '    d = ks_2samp(a, b).statistic',
      '    out.append([float(d), float(kstwobign.sf(math.sqrt(len(a) * len(b) / (len(a) + len(b))) * d))])',
      'print(json.dumps(out))',
    ].join('\n');
    const reference = JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(cases) }).toString()) as [number, number][];
    cases.forEach(([calibration, window], i) => {
      const ours = calibrated(calibration).kolmogorovSmirnov(window);
      expect(ours.statistic).toBeCloseTo(reference[i]![0], 12);
      expect(ours.pValue).toBeCloseTo(reference[i]![1], 9);
    });
  });
});
