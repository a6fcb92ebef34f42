import { z } from 'zod';
import { FP32_MAX } from './instances.ts';

/**
 * A model's calibration: the scores of normal rows it was not trained on, as metadata.json records
 * them, and what follows from them: a threshold for a false-positive rate, each score's p-value,
 * the anomaly rate to expect, and whether recent scores still look like them (a Kolmogorov-Smirnov
 * test). It knows nothing of training or serving; both call it.
 */

/** Up to this many scores are recorded as they are; more are recorded as quantiles. */
export const CALIBRATION_SCORES_KEPT = 2_000;

/**
 * The probabilities of the quantiles recorded for a large calibration: every percentile, then the
 * upper tail in 40 steps a decade down to 1 - 1e-4, so that tail probabilities read to about 1e-4.
 */
const QUANTILE_PROBABILITIES: readonly number[] = [
  ...Array.from({ length: 100 }, (_, i) => i / 100),
  ...Array.from({ length: 40 }, (_, i) => 1 - 10 ** (-2 - (i + 1) / 20)),
  1,
];

const ascending = (values: readonly number[]) => values.every((value, i) => i === 0 || value >= values[i - 1]!);

export const calibrationSchema = z
  .object({
    /** How many normal rows were scored. */
    rows: z.number().int().positive(),
    /** Which rows they were, in words. */
    source: z.string().min(1),
    /** Their scores, ascending: all of them, or (with `probabilities`) the quantiles at those probabilities. */
    scores: z.array(z.number().nonnegative()).min(1),
    /** The probability of each quantile in `scores`, ascending from 0 to 1, when there were more than 2,000 rows. */
    probabilities: z.array(z.number().min(0).max(1)).min(2).optional(),
  })
  .refine((c) => ascending(c.scores), { message: 'scores must be in ascending order', path: ['scores'] })
  .refine((c) => (c.probabilities ? c.probabilities.length === c.scores.length : c.scores.length === c.rows), {
    message: 'scores holds every row\'s score (as many as rows), or with probabilities, one quantile each',
    path: ['scores'],
  })
  .refine((c) => !c.probabilities || (ascending(c.probabilities) && c.probabilities[0] === 0 && c.probabilities.at(-1) === 1), {
    message: 'probabilities must ascend from 0 to 1',
    path: ['probabilities'],
  });
export type CalibrationRecord = z.infer<typeof calibrationSchema>;

/** The quantile of sorted values at probability p, interpolated between order statistics (R's and numpy's default). */
function quantile(sorted: readonly number[], p: number): number {
  const at = p * (sorted.length - 1);
  const below = Math.floor(at);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (at - below) * (sorted[above]! - sorted[below]!);
}

/**
 * The calibration record of some normal rows' scores: every score when there are few, else
 * quantiles. A score past FP32's range (or NaN: an overflow inside the model) counts as FP32_MAX,
 * as the server answers it.
 */
export function calibrationRecord(scores: readonly number[], source: string): CalibrationRecord {
  if (scores.length === 0) throw new RangeError('a calibration needs at least one score');
  const sorted = scores.map((score) => (score <= FP32_MAX ? score : FP32_MAX)).sort((a, b) => a - b);
  if (sorted.length <= CALIBRATION_SCORES_KEPT) return { rows: sorted.length, source, scores: sorted };
  return { rows: sorted.length, source, scores: QUANTILE_PROBABILITIES.map((p) => quantile(sorted, p)), probabilities: [...QUANTILE_PROBABILITIES] };
}

/** The first index whose value is at least `x` (`strict`: greater than `x`) in ascending values. */
function firstIndex(values: readonly number[], x: number, strict: boolean): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (strict ? values[middle]! <= x : values[middle]! < x) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Kolmogorov's distribution's upper tail Q(λ) = P(K > λ), from whichever of its two series
 * converges fast at λ: 1 - √(2π)/λ Σ exp(-(2k-1)²π²/(8λ²)) below 1.18, 2 Σ (-1)^(k-1) exp(-2k²λ²) above.
 */
function kolmogorovTail(lambda: number): number {
  if (lambda <= 0) return 1;
  let sum = 0;
  if (lambda < 1.18) {
    for (let k = 1; k <= 10; k++) sum += Math.exp(-((2 * k - 1) ** 2) * Math.PI ** 2 / (8 * lambda * lambda));
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * sum));
  }
  for (let k = 1; k <= 10; k++) sum += 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
  return Math.min(1, Math.max(0, sum));
}

export interface KolmogorovSmirnov {
  /** The largest gap between the two distributions' cumulative shares, 0 to 1. */
  readonly statistic: number;
  /** How likely a gap at least that large is between two samples of one distribution. */
  readonly pValue: number;
}

/** A calibration record, read: the distribution of a normal row's score. */
export class Calibration {
  readonly rows: number;
  private readonly scores: readonly number[];
  private readonly probabilities: readonly number[] | undefined;

  constructor(record: CalibrationRecord) {
    this.rows = record.rows;
    this.scores = record.scores;
    this.probabilities = record.probabilities;
  }

  /** The share of normal rows scoring at most `x` (`strict`: below `x`). */
  private shareBelow(x: number, strict: boolean): number {
    const { scores, probabilities } = this;
    const index = firstIndex(scores, x, !strict);
    if (!probabilities) return index / scores.length;
    // Between two recorded quantiles, the share grows linearly.
    if (index === 0) return 0;
    if (index === scores.length) return 1;
    const [low, high] = [scores[index - 1]!, scores[index]!];
    const [pLow, pHigh] = [probabilities[index - 1]!, probabilities[index]!];
    return high === low ? pHigh : pLow + ((x - low) / (high - low)) * (pHigh - pLow);
  }

  /** The share of normal rows scoring at least `x` (`strict`: above `x`), counted where every score is recorded. */
  private shareAbove(x: number, strict: boolean): number {
    const { scores } = this;
    return this.probabilities ? 1 - this.shareBelow(x, !strict) : (scores.length - firstIndex(scores, x, strict)) / scores.length;
  }

  /** The empirical p-value of a score: the share of calibration scores at or above it. */
  pValue(score: number): number {
    return Number.isNaN(score) ? 0 : this.shareAbove(score, false);
  }

  /** The share of normal rows scoring above `threshold`: the anomaly rate to expect of normal traffic. */
  expectedRate(threshold: number): number {
    return this.shareAbove(threshold, true);
  }

  /** The score below which a share `p` of normal rows fall (interpolated between recorded scores). */
  quantile(p: number): number {
    const { scores, probabilities } = this;
    if (!probabilities) return quantile(scores, p);
    const index = Math.max(1, firstIndex(probabilities, p, false));
    const [pLow, pHigh] = [probabilities[index - 1]!, probabilities[index]!];
    const [low, high] = [scores[index - 1]!, scores[index]!];
    return low + ((p - pLow) / (pHigh - pLow || 1)) * (high - low);
  }

  /** The smallest false-positive rate the calibration can tell apart from zero: one row in `rows`. */
  get resolution(): number {
    return 1 / this.rows;
  }

  /**
   * The threshold that calls at most a share `rate` of the calibration's normal rows anomalous
   * (above it): the lowest recorded score with no more than that share above it.
   */
  thresholdFor(rate: number): number {
    if (!(rate >= this.resolution && rate < 1)) throw new RangeError(`a false-positive rate from ${this.resolution} (one row in ${this.rows}) to below 1`);
    const { scores, probabilities } = this;
    if (probabilities) return this.quantile(1 - rate);
    return scores[scores.length - 1 - Math.floor(rate * scores.length + 1e-9)]!;
  }

  /**
   * Tests whether `sample` (recent scores) comes from the calibration's distribution: the two-sample
   * Kolmogorov-Smirnov test with its asymptotic p-value, Q(√(nm/(n+m))·D), as R's
   * `ks.test(exact = FALSE)` computes it (scipy's `kstwobign.sf`). Windows are hundreds of scores,
   * where the asymptotic form is within a few thousandths of the exact one.
   */
  kolmogorovSmirnov(sample: readonly number[]): KolmogorovSmirnov {
    const sorted = [...sample].sort((a, b) => a - b);
    const m = sorted.length;
    if (m === 0) return { statistic: 0, pValue: 1 };
    let statistic = 0;
    // Both distributions are steps (or the calibration's is continuous): the largest gap is at a
    // score of either, on one side of it or the other.
    for (const x of this.probabilities ? sorted : [...sorted, ...this.scores]) {
      const below = this.shareBelow(x, true) - firstIndex(sorted, x, false) / m;
      const atOrBelow = this.shareBelow(x, false) - firstIndex(sorted, x, true) / m;
      statistic = Math.max(statistic, Math.abs(below), Math.abs(atOrBelow));
    }
    return { statistic, pValue: kolmogorovTail(Math.sqrt((this.rows * m) / (this.rows + m)) * statistic) };
  }
}
