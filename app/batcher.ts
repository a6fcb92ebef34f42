import type { Detector, Score, ScoreOptions } from '../model/detector.ts';
import type { Logger } from '../lib/logger.ts';
import { flattenWindows, InvalidInstanceError } from '../model/instances.ts';
import { BatchFailedError, InvalidRequestError, OverloadedError } from './errors.ts';
import type { Metrics } from './metrics.ts';

/**
 * Rejects a request of more than `maxBatchSize` instances: the adapters call it before they build
 * anything per instance, the batcher before it queues (a request is never split across passes).
 */
export function checkInstanceCount(count: number, maxBatchSize: number): void {
  if (count > maxBatchSize) throw new InvalidRequestError(`${count} instances in one request; at most ${maxBatchSize} are allowed (MAX_BATCH_SIZE)`);
}

export interface BatcherOptions {
  /** Most rows in one forward pass, and so in one request. */
  readonly maxBatchSize: number;
  /** Most rows waiting for a forward pass (MAX_QUEUED_ROWS): a request past it is shed at once. */
  readonly maxQueuedRows: number;
  /** Longest a request waits for its forward pass (MAX_QUEUE_WAIT_SECONDS): past it, it is shed. */
  readonly maxQueueWaitSeconds: number;
  readonly metrics: Metrics;
  /** Where the scores go for the drift gauges (drift.ts), if anywhere. */
  readonly drift?: { add(scores: readonly Score[]): void };
  /** Where a failed batch is reported, once. */
  readonly logger: Logger;
}

interface Pending {
  /** Where its rows, checked and normalised (Detector.normalise), start in the batcher's `queuedValues`. */
  readonly at: number;
  readonly rows: number;
  readonly options: ScoreOptions;
  /** performance.now() when it was queued, in ms. */
  readonly enqueuedAt: number;
  readonly resolve: (scores: Score[]) => void;
  readonly reject: (error: unknown) => void;
}

const sameOptions = (a: ScoreOptions, b: ScoreOptions) => !a.reconstruction === !b.reconstruction && !a.attribution === !b.attribution && !a.pValue === !b.pValue;

/** A score with only what its request asked for, when a request beside it in the batch asked for more. */
const onlyAsked = ({ reconstructionError, isAnomaly, reconstruction, attribution, pValue }: Score, options: ScoreOptions): Score => ({
  reconstructionError,
  isAnomaly,
  ...(options.reconstruction && { reconstruction }),
  ...(options.attribution && { attribution }),
  ...(options.pValue && { pValue }),
});

/** Passes' worth of rows that the queue's buffer keeps from one flush to the next. */
const BUFFER_KEPT_PASSES = 4;

/**
 * Coalesces concurrent requests into one forward pass. A request is queued and the queue is
 * scored in a setImmediate callback: after the event loop has read every request that arrived
 * meanwhile, but with no timer, so a request that arrives alone is scored in the same turn.
 *
 * The queue is bounded in rows and in waiting time, so that a server offered more than it can
 * score tells the excess to retry elsewhere instead of making every client wait longer. Nothing
 * that goes wrong in a forward pass leaves that callback (where an exception would end the
 * process): it fails the requests of its batch.
 */
export class Batcher {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private scheduled = false;
  /**
   * The queued requests' rows, normalised, one request after the other, as the forward pass reads
   * them: a pass's input is a view of it. It grows with the queue, to MAX_QUEUED_ROWS rows at most
   * and MAX_BATCH_SIZE more (those of a request that finds the queue full), and is emptied with
   * it: kept for the next flush when it holds BUFFER_KEPT_PASSES passes' rows or fewer.
   */
  private queuedValues = new Float32Array(0);
  /** How many of `queuedValues` the queue's requests hold. */
  private queuedLength = 0;

  constructor(
    private readonly detector: Detector,
    private readonly options: BatcherOptions,
  ) {
    // A request is in flight from its queueing to its answer, and its pass runs within one turn of
    // the event loop, so at any scrape the requests in flight are those in the queue.
    options.metrics.countInFlight(() => this.queue.length);
  }

  /**
   * Scores one request's rows. Bad rows reject this request alone, before it joins a batch: with
   * InvalidInstanceError, or, given `where`, with InvalidRequestError naming the row as the
   * protocol's client wrote it (`where(index)`, e.g. "instances[3]"). The promise resolves with
   * exactly this request's scores, in order. Rejects with OverloadedError when the queue is full or
   * the request waited too long. Not an async function: each level of await a request waits in
   * costs it a promise and a resumption when its batch is scored.
   */
  score(given: readonly unknown[], options: ScoreOptions = {}, where?: (index: number) => string): Promise<Score[]> {
    let at: number;
    try {
      at = this.accept(given);
    } catch (error) {
      return Promise.reject(where && error instanceof InvalidInstanceError ? new InvalidRequestError(`${where(error.index)}: ${error.problem}`) : error);
    }
    const rows = given.length;
    if (rows === 0) return Promise.resolve([]);
    return new Promise<Score[]>((resolve, reject) => {
      this.queue.push({ at, rows, options, enqueuedAt: performance.now(), resolve, reject });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /**
   * Checks a request's rows for their count, shape and values, and, if the queue has room for
   * them, normalises them onto the end of `queuedValues`; returns where they start there.
   */
  private accept(given: readonly unknown[]): number {
    const { maxBatchSize, maxQueuedRows } = this.options;
    checkInstanceCount(given.length, maxBatchSize);
    const { dims, inputLength } = this.detector;
    const end = this.queuedLength + given.length * inputLength;
    if (end > this.queuedValues.length) {
      const grown = new Float32Array(Math.min(Math.max(end, 2 * this.queuedValues.length), (maxQueuedRows + maxBatchSize) * inputLength));
      grown.set(this.queuedValues.subarray(0, this.queuedLength));
      this.queuedValues = grown;
    }
    const start = this.queuedLength;
    this.detector.normalise(dims.length === 2 ? flattenWindows(given, dims) : given, this.queuedValues, start);
    if (given.length > 0) this.admit(given.length);
    this.queuedLength = end;
    return start;
  }

  /**
   * Throws OverloadedError if `rows` more would take the queue past MAX_QUEUED_ROWS. The adapters
   * also call it with no rows before they read a request's body, so that a full queue sheds a
   * request for the price of its headers.
   */
  admit(rows = 0): void {
    const { maxQueuedRows } = this.options;
    if (this.queuedRows + Math.max(rows, 1) > maxQueuedRows) {
      throw new OverloadedError('queue_full', `the server is at capacity: ${this.queuedRows} rows already wait for a forward pass (MAX_QUEUED_ROWS=${maxQueuedRows})`);
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** The oldest requests that fit in one pass; those that waited past the deadline are shed. */
  private take(): { batch: Pending[]; rows: number } {
    const { maxBatchSize, maxQueueWaitSeconds, metrics } = this.options;
    const batch: Pending[] = [];
    let rows = 0;
    // One reading of the clock for the whole pass: its requests start it together.
    const now = performance.now();
    while (this.queue.length > 0 && rows + this.queue[0]!.rows <= maxBatchSize) {
      const request = this.queue.shift()!;
      this.queuedRows -= request.rows;
      const waited = (now - request.enqueuedAt) / 1000;
      if (waited > maxQueueWaitSeconds) {
        request.reject(new OverloadedError('queue_timeout', `the request waited ${waited.toFixed(3)} s for a forward pass, longer than MAX_QUEUE_WAIT_SECONDS=${maxQueueWaitSeconds}`));
        continue;
      }
      metrics.queueWait.observe(waited);
      batch.push(request);
      rows += request.rows;
    }
    return { batch, rows };
  }

  /**
   * Scores the queue, a pass of at most MAX_BATCH_SIZE rows at a time, until it is empty: as many
   * passes as the queue holds rows for, which MAX_QUEUED_ROWS bounds. Leaving passes to later
   * turns of the event loop would tie the rate of passes to the turns, and under a flood of
   * requests (shed ones included) a turn is long.
   */
  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const { batch, rows } = this.take();
      if (batch.length > 0) this.pass(batch, rows);
    }
    this.queuedLength = 0;
    // A buffer grown by a burst is let go with it, so that the memory of a queue near
    // MAX_QUEUED_ROWS is not held after the queue has emptied.
    if (this.queuedValues.length > BUFFER_KEPT_PASSES * this.options.maxBatchSize * this.detector.inputLength) this.queuedValues = new Float32Array(0);
  }

  /** One forward pass; a fault in it fails its own requests, and nothing else. Either way, each of them is answered. */
  private pass(batch: readonly Pending[], rows: number): void {
    try {
      this.run(batch, rows);
    } catch (error) {
      this.options.logger.error({ err: error, batchRows: rows, batchRequests: batch.length }, 'a forward pass failed: its requests get an error, the server goes on');
      // Requests already resolved ignore this.
      for (const request of batch) request.reject(new BatchFailedError(rows));
    }
  }

  /**
   * The normalised rows of a batch's requests, one after the other, as the forward pass reads
   * them: a view of `queuedValues`, where they already lie so. A batch is a run of the queue's
   * requests with none taken out between them: take() times them all against one reading of the
   * clock, so those it sheds for their wait are the oldest, before the first it keeps. (Copying
   * each request's rows from an array of their own took a pass of 42 rows 18 µs in the server.)
   */
  private passInput(batch: readonly Pending[], rows: number): Float32Array {
    const start = batch[0]!.at;
    return this.queuedValues.subarray(start, start + rows * this.detector.inputLength);
  }

  private run(batch: readonly Pending[], rows: number): void {
    const { metrics } = this.options;
    const start = performance.now();
    // What any request of the batch asks for is computed for all of its rows; each takes its own.
    // Each option read by its name: one function reading all three by a key made that read megamorphic.
    const options = {
      reconstruction: batch.some((request) => request.options.reconstruction),
      attribution: batch.some((request) => request.options.attribution),
      pValue: batch.some((request) => request.options.pValue),
    };
    const scores = this.detector.scoreNormalised(this.passInput(batch, rows), options);
    metrics.forwardPass.observe((performance.now() - start) / 1000);
    metrics.batchSize.observe(rows);
    metrics.instancesScored.inc(rows);
    metrics.lastInference.set(Date.now() / 1000);
    for (const score of scores) {
      metrics.reconstructionError.observe(score.reconstructionError);
      if (score.isAnomaly) metrics.anomalies.inc();
    }
    this.options.drift?.add(scores);
    let offset = 0;
    for (const request of batch) {
      const own = scores.slice(offset, (offset += request.rows));
      request.resolve(sameOptions(request.options, options) ? own : own.map((score) => onlyAsked(score, request.options)));
    }
  }
}
