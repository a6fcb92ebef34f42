import type { Detector, Score } from '../model/detector.ts';
import { validateInstances } from '../model/instances.ts';
import type { Metrics } from './metrics.ts';
import { checkInstanceCount } from './serving.ts';

export interface BatcherOptions {
  /** Most rows in one forward pass, and so in one request. */
  readonly maxBatchSize: number;
  readonly metrics: Metrics;
}

interface Pending {
  readonly rows: number[][];
  readonly reconstruction: boolean;
  readonly enqueuedAt: bigint;
  readonly resolve: (scores: Score[]) => void;
  readonly reject: (error: unknown) => void;
}

const secondsSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * Coalesces concurrent requests into one forward pass. A request is queued and the queue is
 * scored in a setImmediate callback: after the event loop has read every request that arrived
 * meanwhile, but with no timer, so a request that arrives alone is scored in the same turn.
 */
export class Batcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly detector: Detector,
    private readonly options: BatcherOptions,
  ) {}

  /**
   * Scores one request's rows. Bad rows reject this request alone, before it joins a batch, and
   * the promise resolves with exactly this request's scores, in order.
   */
  async score(instances: readonly unknown[], reconstruction = false): Promise<Score[]> {
    checkInstanceCount(instances.length, this.options.maxBatchSize);
    validateInstances(instances, this.detector.inputLength);
    if (instances.length === 0) return [];
    const { inFlight } = this.options.metrics;
    inFlight.inc();
    try {
      return await new Promise<Score[]>((resolve, reject) => {
        this.queue.push({ rows: instances, reconstruction, enqueuedAt: process.hrtime.bigint(), resolve, reject });
        this.schedule();
      });
    } finally {
      inFlight.dec();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const { maxBatchSize, metrics } = this.options;
    const batch: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0 && rows + this.queue[0]!.rows.length <= maxBatchSize) {
      const request = this.queue.shift()!;
      metrics.queueWait.observe(secondsSince(request.enqueuedAt));
      batch.push(request);
      rows += request.rows.length;
    }
    // Whatever did not fit gets the next pass, after the event loop has written these responses.
    if (this.queue.length > 0) this.schedule();

    const start = process.hrtime.bigint();
    let scores: Score[];
    try {
      scores = this.detector.scoreValid(
        batch.flatMap((request) => request.rows),
        { reconstruction: batch.some((request) => request.reconstruction) },
      );
    } catch (error) {
      for (const request of batch) request.reject(error);
      return;
    }
    metrics.forwardPass.observe(secondsSince(start));
    metrics.batchSize.observe(rows);
    metrics.instancesScored.inc(rows);
    metrics.lastInference.set(Date.now() / 1000);
    for (const score of scores) {
      metrics.reconstructionError.observe(score.reconstructionError);
      if (score.isAnomaly) metrics.anomalies.inc();
    }
    let offset = 0;
    for (const request of batch) {
      const own = scores.slice(offset, (offset += request.rows.length));
      request.resolve(request.reconstruction ? own : own.map(({ reconstructionError, isAnomaly }) => ({ reconstructionError, isAnomaly })));
    }
  }
}
