import type { Calibration } from '../model/calibration.ts';
import { createDriftMetrics, METRIC, type MetricsSnapshot } from './metrics.ts';

/** Recent scores and when each was made (milliseconds since the epoch), oldest first. */
export interface RecentScores {
  readonly scores: number[];
  readonly times: number[];
}

/** What the drift gauges compare recent scores with: the served model's calibration and threshold. */
export interface DriftReference {
  readonly calibration: Calibration | undefined;
  readonly threshold: number;
}

/**
 * The newest `size` scores of several windows (a cluster's workers'), oldest first: the window the
 * drift gauges of the whole server test.
 */
export function mergeWindows(windows: readonly RecentScores[], size: number): RecentScores {
  const merged = windows.flatMap(({ scores, times }) => scores.map((score, i) => ({ score, time: times[i]! })));
  merged.sort((a, b) => a.time - b.time);
  const newest = merged.slice(-size);
  return { scores: newest.map((s) => s.score), times: newest.map((s) => s.time) };
}

/**
 * The drift monitor of one process: a bounded window of the scores it made (a ring buffer: a size
 * and an age bound), and the gauges that test a window against the model's calibration. In a
 * cluster, the gauges are set from the windows of all workers merged (see cluster-metrics.ts).
 */
export class DriftMonitor {
  private readonly scores: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;
  private readonly metrics = createDriftMetrics();
  /** Set once the model is loaded. */
  reference: DriftReference | undefined;

  constructor(
    readonly size: number,
    private readonly maxAgeSeconds: number,
  ) {
    this.scores = new Float64Array(size);
    this.times = new Float64Array(size);
  }

  /** Records the scores of a forward pass, made at `now`. */
  add(scores: readonly { readonly reconstructionError: number }[], now = Date.now()): void {
    for (const { reconstructionError } of scores) {
      this.scores[this.next] = reconstructionError;
      this.times[this.next] = now;
      this.next = (this.next + 1) % this.size;
      if (this.count < this.size) this.count++;
    }
  }

  /** The scores within the age bound, oldest first. */
  recent(now = Date.now()): RecentScores {
    const scores: number[] = [];
    const times: number[] = [];
    const since = now - this.maxAgeSeconds * 1000;
    for (let i = 0, at = (this.next - this.count + this.size) % this.size; i < this.count; i++, at = (at + 1) % this.size) {
      if (this.times[at]! < since) continue;
      scores.push(this.scores[at]!);
      times.push(this.times[at]!);
    }
    return { scores, times };
  }

  /**
   * The drift gauges of `window` (this process's own by default), in prom-client's JSON form: the
   * window's size and anomaly rate, and with a calibration, the rate it expects and the
   * Kolmogorov-Smirnov test. Before the model is loaded there is nothing to compare with: none.
   */
  async gauges(window: RecentScores = this.recent()): Promise<MetricsSnapshot> {
    const { reference, metrics } = this;
    if (!reference) return [];
    const { scores } = window;
    const { threshold, calibration } = reference;
    metrics.windowScores.set(scores.length);
    // NaN (no scores) is what Prometheus stores for a rate of nothing: no alert compares true with it.
    metrics.windowAnomalyRate.set(scores.length === 0 ? NaN : scores.filter((score) => !(score <= threshold)).length / scores.length);
    if (calibration) {
      const test = calibration.kolmogorovSmirnov(scores);
      metrics.expectedAnomalyRate.set(calibration.expectedRate(threshold));
      metrics.ksStatistic.set(test.statistic);
      metrics.ksPValue.set(test.pValue);
    }
    const snapshot = await metrics.registry.getMetricsAsJSON();
    return calibration ? snapshot : snapshot.filter((metric) => metric.name === METRIC.driftWindowScores || metric.name === METRIC.driftWindowAnomalyRate);
  }
}
