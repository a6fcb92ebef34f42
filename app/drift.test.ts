import { describe, expect, it } from 'vitest';
import { Calibration, calibrationRecord } from '../model/calibration.ts';
import { DriftMonitor, mergeWindows } from './drift.ts';
import { METRIC } from './metrics.ts';

const scored = (...values: number[]) => values.map((reconstructionError) => ({ reconstructionError }));
const gaugeValues = async (monitor: DriftMonitor, window?: Parameters<DriftMonitor['gauges']>[0]) =>
  Object.fromEntries((await monitor.gauges(window)).map((metric) => [metric.name, metric.values[0]?.value]));

describe('DriftMonitor', () => {
  it('keeps the newest scores up to its size, oldest first', () => {
    const monitor = new DriftMonitor(3, 60);
    monitor.add(scored(1, 2), 1_000);
    monitor.add(scored(3, 4, 5), 2_000);
    expect(monitor.recent(2_000)).toEqual({ scores: [3, 4, 5], times: [2_000, 2_000, 2_000] });
    monitor.add(scored(6), 3_000);
    expect(monitor.recent(3_000).scores).toEqual([4, 5, 6]);
  });

  it('drops scores older than its age bound', () => {
    const monitor = new DriftMonitor(10, 60);
    monitor.add(scored(1), 0);
    monitor.add(scored(2), 30_000);
    expect(monitor.recent(60_000).scores).toEqual([1, 2]);
    expect(monitor.recent(60_001).scores).toEqual([2]);
    expect(monitor.recent(200_000).scores).toEqual([]);
  });

  it('merges windows of several workers into the newest scores of all, up to the size', () => {
    const merged = mergeWindows(
      [
        { scores: [1, 3], times: [10, 30] },
        { scores: [2, 4, 5], times: [20, 40, 50] },
      ],
      4,
    );
    expect(merged).toEqual({ scores: [2, 3, 4, 5], times: [20, 30, 40, 50] });
  });

  it('exports nothing before the model is loaded, then the window against the calibration', async () => {
    const monitor = new DriftMonitor(100, 600);
    expect(await monitor.gauges()).toEqual([]);
    const calibration = new Calibration(calibrationRecord([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 'ten'));
    monitor.reference = { calibration, threshold: 0.85 };
    expect(await gaugeValues(monitor)).toMatchObject({ [METRIC.driftWindowScores]: 0, [METRIC.driftKsPValue]: 1 });
    monitor.add(scored(0.9, 0.95, 0.99, 2, 3));
    const gauges = await gaugeValues(monitor);
    expect(gauges).toEqual({
      [METRIC.driftWindowScores]: 5,
      [METRIC.driftWindowAnomalyRate]: 1,
      [METRIC.expectedAnomalyRate]: 0.2,
      // Up to 0.8, the calibration has 80% of its scores and the window none.
      [METRIC.driftKsStatistic]: calibration.kolmogorovSmirnov([0.9, 0.95, 0.99, 2, 3]).statistic,
      [METRIC.driftKsPValue]: calibration.kolmogorovSmirnov([0.9, 0.95, 0.99, 2, 3]).pValue,
    });
    expect(gauges[METRIC.driftKsStatistic]).toBeCloseTo(0.8, 12);
  });

  it('exports the window\'s size and anomaly rate alone for a model without a calibration', async () => {
    const monitor = new DriftMonitor(100, 600);
    monitor.reference = { calibration: undefined, threshold: 1 };
    monitor.add(scored(0.5, 2));
    expect(await gaugeValues(monitor)).toEqual({ [METRIC.driftWindowScores]: 2, [METRIC.driftWindowAnomalyRate]: 0.5 });
  });
});
