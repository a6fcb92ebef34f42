import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Batcher } from './batcher.ts';
import type { Detector } from '../model/detector.ts';
import { useBundledModel } from '../test/bundled-model.ts';
import { InvalidInstanceError } from '../model/instances.ts';
import { InvalidRequestError } from './errors.ts';
import { createMetrics } from './metrics.ts';

const bundled = useBundledModel();
let detector: Detector;
let normal: number[];
let anomalous: number[];
/** The rows of each forward pass the detector ran. */
let passes: number[];

beforeAll(() => {
  ({ detector, normal, anomalous } = bundled);
  const scoreValid = detector.scoreValid.bind(detector);
  detector.scoreValid = (rows, options) => {
    passes.push(rows.length);
    return scoreValid(rows, options);
  };
});

const batcher = (maxBatchSize = 64) => {
  passes = [];
  return new Batcher(detector, { maxBatchSize, metrics: createMetrics() });
};

describe('Batcher', () => {
  it('scores a request that arrives alone without waiting on a timer', async () => {
    // With every timer frozen, a batcher that waited on one would never answer.
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      const [score] = await batcher().score([anomalous]);
      expect(score!.isAnomaly).toBe(true);
      expect(passes).toEqual([1]);
    } finally {
      vi.useRealTimers();
    }
  }, 5_000);

  it('coalesces concurrent requests into one forward pass and gives each exactly its own rows', async () => {
    const b = batcher();
    const requests = Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? [anomalous, normal] : [normal]));
    const results = await Promise.all(requests.map((rows) => b.score(rows)));
    expect(passes).toEqual([requests.flat().length]);
    results.forEach((scores, i) => {
      expect(scores.map((s) => s.isAnomaly)).toEqual(i % 3 === 0 ? [true, false] : [false]);
      expect(scores.map((s) => s.reconstructionError)).toEqual(detector.score(requests[i]!).map((s) => s.reconstructionError));
    });
  });

  it('never puts more than maxBatchSize rows in one pass, and never splits a request', async () => {
    const b = batcher(5);
    const results = await Promise.all([b.score([normal, normal, normal]), b.score([normal, normal, normal]), b.score([anomalous])]);
    expect(passes).toEqual([3, 4]);
    expect(results.map((r) => r.length)).toEqual([3, 3, 1]);
    expect(results[2]![0]!.isAnomaly).toBe(true);
  });

  it('rejects a request with a bad row alone; its neighbours are scored', async () => {
    const b = batcher();
    const results = await Promise.allSettled([b.score([normal]), b.score([normal, normal.slice(2)]), b.score([anomalous])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason as InvalidInstanceError;
    expect(reason).toBeInstanceOf(InvalidInstanceError);
    expect(reason.message).toBe('instance 1: expected 140 values, got 138');
    expect(passes).toEqual([2]);
  });

  it('rejects a request of more rows than maxBatchSize', async () => {
    await expect(batcher(2).score([normal, normal, normal])).rejects.toThrow(InvalidRequestError);
  });

  it('counts the requests in flight, from queueing to answer, and never a rejected one', async () => {
    const metrics = createMetrics();
    const b = new Batcher(detector, { maxBatchSize: 64, metrics });
    const inFlight = async () => (await metrics.inFlight.get()).values[0]!.value;
    const pending = [b.score([normal]), b.score([anomalous, normal]), b.score([normal.slice(1)]).catch((error: unknown) => error)];
    expect(await inFlight()).toBe(2);
    await Promise.all(pending);
    expect(await inFlight()).toBe(0);
  });

  it('returns reconstructions only to the requests that asked', async () => {
    const b = batcher();
    const [plain, withReconstruction] = await Promise.all([b.score([normal]), b.score([normal], true)]);
    expect(passes).toEqual([2]);
    expect(plain![0]).not.toHaveProperty('reconstruction');
    expect(withReconstruction![0]!.reconstruction).toHaveLength(140);
  });
});
