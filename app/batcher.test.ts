import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Batcher } from './batcher.ts';
import type { Detector, Score } from '../model/detector.ts';
import { useBundledModel } from '../test/bundled-model.ts';
import { InvalidInstanceError } from '../model/instances.ts';
import { BatchFailedError, InvalidRequestError, OverloadedError } from './errors.ts';
import type { Logger } from '../lib/logger.ts';
import { createMetrics } from './metrics.ts';

const bundled = useBundledModel();
let detector: Detector;
let normal: number[];
let anomalous: number[];
/** The rows of each forward pass the detector ran. */
let passes: number[];

beforeAll(() => {
  ({ detector, normal, anomalous } = bundled);
  const scoreNormalised = detector.scoreNormalised.bind(detector);
  detector.scoreNormalised = (input, options) => {
    passes.push(input.length / detector.inputLength);
    return scoreNormalised(input, options);
  };
});

/** What the batcher logged at error level. */
let errors: { fields: Record<string, unknown>; message: string }[];
const logger = { error: (fields: Record<string, unknown>, message: string) => errors.push({ fields, message }) } as unknown as Logger;

const batcher = (maxBatchSize = 64, options: { maxQueuedRows?: number; maxQueueWaitSeconds?: number; metrics?: ReturnType<typeof createMetrics> } = {}) => {
  passes = [];
  errors = [];
  return new Batcher(detector, { maxBatchSize, maxQueuedRows: 1024, maxQueueWaitSeconds: 1, metrics: createMetrics(), logger, ...options });
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

  it('gives a pass its own rows alone when it follows a larger pass', async () => {
    const b = batcher();
    const first = [[anomalous, normal], [normal], [anomalous]];
    await Promise.all(first.map((rows) => b.score(rows)));
    const later = [[normal], [anomalous]];
    const scores = [await b.score(later[0]!), await b.score(later[1]!)];
    expect(passes).toEqual([4, 1, 1]);
    scores.forEach((own, i) => expect(own.map((s) => s.reconstructionError)).toEqual(detector.score(later[i]!).map((s) => s.reconstructionError)));
  });

  it('holds the queued rows in a buffer no longer than the longest queue, whatever it has served', async () => {
    const b = batcher();
    for (let i = 0; i < 50; i++) await b.score([normal]);
    await Promise.all([b.score([normal, anomalous]), b.score([normal])]);
    for (let i = 0; i < 50; i++) await b.score([anomalous]);
    expect(b['queuedValues'].length).toBeLessThanOrEqual(4 * detector.inputLength);
  });

  it('never makes room for more rows than maxQueuedRows and one request more', async () => {
    const b = batcher(2, { maxQueuedRows: 3 });
    const results = await Promise.allSettled([b.score([normal]), b.score([normal, normal]), b.score([normal, anomalous])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(b['queuedValues'].length).toBe(5 * detector.inputLength);
  });

  it('lets a burst\'s buffer go when the queue has emptied, and scores the next request as before', async () => {
    const b = batcher(2);
    const burst = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? [normal] : [anomalous]));
    const results = await Promise.all(burst.map((rows) => b.score(rows)));
    expect(passes).toEqual([2, 2, 2, 2, 2]);
    results.forEach((own, i) => expect(own).toEqual(detector.score(burst[i]!)));
    expect(b['queuedValues'].length).toBe(0);
    expect(await b.score([anomalous])).toEqual(detector.score([anomalous]));
  });

  it('never puts more than maxBatchSize rows in one pass, and never splits a request', async () => {
    const b = batcher(5);
    const results = await Promise.all([b.score([normal, normal, normal]), b.score([normal, normal, normal]), b.score([anomalous])]);
    expect(passes).toEqual([3, 4]);
    expect(results.map((r) => r.length)).toEqual([3, 3, 1]);
    expect(results[2]![0]!.isAnomaly).toBe(true);
  });

  it('rejects a request with a bad row alone; its neighbours are scored, each on its own rows', async () => {
    const b = batcher();
    // The rejected request's good row was written before its bad one was found: the next is scored on its own.
    const results = await Promise.allSettled([b.score([normal]), b.score([anomalous, normal.slice(2)]), b.score([normal])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason as InvalidInstanceError;
    expect(reason).toBeInstanceOf(InvalidInstanceError);
    expect(reason.message).toBe('instance 1: expected 140 values, got 138');
    expect(passes).toEqual([2]);
    const [alone] = detector.score([normal]);
    for (const i of [0, 2]) expect((results[i] as PromiseFulfilledResult<Score[]>).value).toEqual([alone]);
  });

  it('names a bad row as the protocol does, when told how', async () => {
    await expect(batcher().score([normal, normal.slice(2)], {}, (index) => `instances[${index}]`)).rejects.toThrow(
      new InvalidRequestError('instances[1]: expected 140 values, got 138'),
    );
  });

  it('rejects a request of more rows than maxBatchSize', async () => {
    await expect(batcher(2).score([normal, normal, normal])).rejects.toThrow(InvalidRequestError);
  });

  it('counts the requests in flight, from queueing to answer, and never a rejected one', async () => {
    const metrics = createMetrics();
    const b = batcher(64, { metrics });
    const inFlight = async () => (await metrics.inFlight.get()).values[0]!.value;
    const pending = [b.score([normal]), b.score([anomalous, normal]), b.score([normal.slice(1)]).catch((error: unknown) => error)];
    expect(await inFlight()).toBe(2);
    await Promise.all(pending);
    expect(await inFlight()).toBe(0);
  });

  it('returns reconstructions only to the requests that asked', async () => {
    const b = batcher();
    const [plain, withReconstruction] = await Promise.all([b.score([normal]), b.score([normal], { reconstruction: true })]);
    expect(passes).toEqual([2]);
    expect(plain![0]).not.toHaveProperty('reconstruction');
    expect(withReconstruction![0]!.reconstruction).toHaveLength(140);
  });

  it('sheds a request that would take the queue past maxQueuedRows, at once, and scores the rest', async () => {
    const b = batcher(64, { maxQueuedRows: 3 });
    const results = await Promise.allSettled([b.score([normal, normal]), b.score([normal, normal]), b.score([anomalous])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason as OverloadedError;
    expect(reason).toBeInstanceOf(OverloadedError);
    expect(reason.reason).toBe('queue_full');
    expect(reason.message).toBe('the server is at capacity: 2 rows already wait for a forward pass (MAX_QUEUED_ROWS=3)');
    expect(passes).toEqual([3]);
    // Scored on its own row, not on those of the shed request before it.
    expect((results[2] as PromiseFulfilledResult<Score[]>).value).toEqual(detector.score([anomalous]));
    // The queue empties as it is scored: the same request is taken now.
    expect(await b.score([normal, normal])).toHaveLength(2);
  });

  it('sheds the requests that waited longer than maxQueueWaitSeconds for their pass', async () => {
    const metrics = createMetrics();
    const b = batcher(64, { maxQueueWaitSeconds: 0.02, metrics });
    const waiting = b.score([normal]);
    // The event loop is held, as by a long pass before it; on the batcher's clock: Date.now()'s whole
    // milliseconds would let the wait end up to one short of 40.
    const busyUntil = performance.now() + 40;
    while (performance.now() < busyUntil);
    const error = (await waiting.catch((e: unknown) => e)) as OverloadedError;
    expect(error).toBeInstanceOf(OverloadedError);
    expect(error.reason).toBe('queue_timeout');
    expect(error.message).toMatch(/^the request waited 0\.0[4-9]\d s for a forward pass, longer than MAX_QUEUE_WAIT_SECONDS=0\.02$/);
    expect(passes).toEqual([]);
    expect((await metrics.inFlight.get()).values[0]!.value).toBe(0);
    expect(await b.score([normal])).toHaveLength(1);
  });

  it('scores the requests of a pass that did not wait too long with their own rows, those of a shed one before them taken out', async () => {
    const b = batcher(64, { maxQueueWaitSeconds: 0.02 });
    const [alone] = await b.score([anomalous]);
    passes.length = 0;
    const shed = b.score([normal, normal]);
    const busyUntil = performance.now() + 40;
    while (performance.now() < busyUntil);
    // Queued after the wait, into the same pass as the shed request, after its rows.
    const [kept, next] = await Promise.all([b.score([anomalous]), b.score([normal])]);
    expect(((await shed.catch((e: unknown) => e)) as OverloadedError).reason).toBe('queue_timeout');
    expect(passes).toEqual([2]);
    expect(kept).toEqual([alone]);
    expect(next![0]!.reconstructionError).toBeCloseTo(detector.score([normal])[0]!.reconstructionError, 6);
  });

  describe.each([
    ['in the forward pass', () => {
      const scoreNormalised = detector.scoreNormalised;
      detector.scoreNormalised = () => {
        detector.scoreNormalised = scoreNormalised;
        throw new Error('injected: the backend failed');
      };
    }],
    ['in the metrics', (metrics: ReturnType<typeof createMetrics>) => {
      const observe = metrics.reconstructionError.observe.bind(metrics.reconstructionError);
      metrics.reconstructionError.observe = () => {
        metrics.reconstructionError.observe = observe;
        throw new Error('injected: the metric refused a value');
      };
    }],
  ])('a fault %s', (_where, inject) => {
    it('fails the requests of its batch with BatchFailedError, logs it once with the batch size, and the next batch is scored', async () => {
      const metrics = createMetrics();
      const b = batcher(64, { metrics });
      inject(metrics);
      const results = await Promise.allSettled([b.score([normal, anomalous]), b.score([normal])]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      for (const result of results) expect((result as PromiseRejectedResult).reason).toBeInstanceOf(BatchFailedError);
      // Answered, if with an error: no longer in flight.
      expect((await metrics.inFlight.get()).values[0]!.value).toBe(0);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ fields: { batchRows: 3, batchRequests: 2 }, message: 'a forward pass failed: its requests get an error, the server goes on' });
      expect((await b.score([anomalous]))[0]!.isAnomaly).toBe(true);
    });
  });
});
