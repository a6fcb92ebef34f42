import type { Calibration } from '../model/calibration.ts';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LeanHistogram } from '../lib/lean-histogram.ts';
/** The prefix of every metric the server exports (prom-client's default process metrics too). */
export const METRIC_PREFIX = 'anomaly_serve_';

const SUFFIXES = {
  apiKeysReloadFailures: 'api_keys_reload_failures_total',
  apiKeysLastLoad: 'api_keys_last_load_timestamp_seconds',
  httpRequests: 'http_requests_total',
  httpDuration: 'http_request_duration_seconds',
  requestsRejected: 'requests_rejected_total',
  inFlight: 'inference_requests_in_flight',
  batchSize: 'batch_size',
  queueWait: 'batch_queue_wait_seconds',
  forwardPass: 'forward_pass_seconds',
  instancesScored: 'instances_scored_total',
  anomalies: 'anomalies_total',
  reconstructionError: 'reconstruction_error',
  threshold: 'threshold',
  lastInference: 'last_inference_timestamp_seconds',
  modelInfo: 'model_info',
  driftWindowScores: 'drift_window_scores',
  driftWindowAnomalyRate: 'drift_window_anomaly_rate',
  expectedAnomalyRate: 'expected_anomaly_rate',
  driftKsStatistic: 'drift_ks_statistic',
  driftKsPValue: 'drift_ks_p_value',
} as const;

/**
 * The name of every metric the server exports, by the key it has in createMetrics(): the
 * dashboard, the autoscaling queries, Triton's statistics and the load tools import them from here.
 */
export const METRIC = Object.fromEntries(Object.entries(SUFFIXES).map(([key, suffix]) => [key, METRIC_PREFIX + suffix])) as {
  readonly [K in keyof typeof SUFFIXES]: `${typeof METRIC_PREFIX}${(typeof SUFFIXES)[K]}`;
};

/**
 * The API keys' metrics. A cluster primary, which reads the keys file for its workers, registers
 * these alone in a registry of its own (see ClusterMetrics).
 */
export function createApiKeyMetrics(registers: Registry[]) {
  return {
    apiKeysReloadFailures: new Counter({
      name: METRIC.apiKeysReloadFailures,
      help: 'Changes of API_KEYS_FILE that could not be loaded (the keys in force were kept)',
      registers,
    }),
    apiKeysLastLoad: new Gauge({
      name: METRIC.apiKeysLastLoad,
      help: 'When the API keys in force were last loaded from API_KEYS_FILE, in seconds since the epoch',
      // One process reads the file (a cluster's primary): the others report 0.
      aggregator: 'max',
      registers,
    }),
  };
}

/**
 * The score histogram's buckets before a model says otherwise (see scoreBuckets): fit to the
 * bundled model's scale.
 */
const DEFAULT_SCORE_BUCKETS = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5];

/** `value` to two significant digits, so that bucket bounds read as numbers people write. */
const twoDigits = (value: number) => Number(value.toPrecision(2));

/**
 * Buckets that follow a model's own scale: 16 bounds in a geometric series from the 1st percentile
 * of its calibration (a tenth of the threshold without one) to 20 times its threshold, where
 * anomalies score. A model with scores of another size than the bundled one's still gets a
 * histogram that tells its normal rows from its anomalies.
 */
export function scoreBuckets(threshold: number, calibration: Calibration | undefined): number[] {
  const low = calibration ? calibration.quantile(0.01) : threshold / 10;
  const high = 20 * threshold;
  if (!(low > 0 && high > low)) return DEFAULT_SCORE_BUCKETS;
  const step = (high / low) ** (1 / 15);
  return [...new Set(Array.from({ length: 16 }, (_, i) => twoDigits(low * step ** i)))];
}

/** Every metric the server exports but the drift gauges, in one registry (listed in docs/metrics.md, generated from it). */
export function createMetrics({ scoreBuckets = DEFAULT_SCORE_BUCKETS }: { readonly scoreBuckets?: readonly number[] } = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const httpLabels = ['method', 'route', 'status'] as const;
  // The requests answered are the duration histogram's count, copied at each scrape: a request makes
  // one labelled observation instead of two (prom-client hashes and checks the labels every time;
  // the counter's alone cost 0.23 µs a request).
  new Counter({
    name: METRIC.httpRequests,
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: httpLabels,
    registers,
    async collect() {
      const { values } = await httpDuration.get();
      this.reset();
      for (const { metricName, labels, value } of values) if (metricName === `${METRIC.httpDuration}_count`) this.inc(labels, value);
    },
  });
  // Observed on every request (and below, the queue wait on every request and the score on every
  // row): a LeanHistogram, which costs an observation a tenth of prom-client's.
  const httpDuration = new LeanHistogram({
    name: METRIC.httpDuration,
    help: 'Time from receiving a request to answering it',
    labelNames: httpLabels,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  // The in-flight gauge is read at each scrape from what the batcher already knows (countInFlight),
  // not kept by an increment and a decrement of prom-client's around every request.
  let inFlightNow = () => 0;
  return {
    registry,
    httpDuration,
    requestsRejected: new Counter({
      name: METRIC.requestsRejected,
      help: 'Requests answered with an error of the client\'s or of load, by reason (invalid_request, unauthorized, queue_full, queue_timeout, ...)',
      labelNames: ['reason'] as const,
      registers,
    }),
    inFlight: new Gauge({
      name: METRIC.inFlight,
      help: 'Inference requests accepted and not yet answered: queued for a forward pass or in one',
      registers,
      collect() {
        this.set(inFlightNow());
      },
    }),
    /** Has the in-flight gauge read `count` at each scrape (the batcher's queue). */
    countInFlight(count: () => number): void {
      inFlightNow = count;
    },
    batchSize: new Histogram({
      name: METRIC.batchSize,
      help: 'Rows scored in one forward pass (concurrent requests are coalesced)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
    queueWait: new LeanHistogram({
      name: METRIC.queueWait,
      help: 'Time a request waits for its forward pass to start',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    forwardPass: new Histogram({
      name: METRIC.forwardPass,
      help: 'Time of one forward pass of the model, normalisation and scoring included',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    }),
    instancesScored: new Counter({
      name: METRIC.instancesScored,
      help: 'Rows (instances) scored',
      registers,
    }),
    anomalies: new Counter({
      name: METRIC.anomalies,
      help: 'Rows scored as anomalous',
      registers,
    }),
    reconstructionError: new LeanHistogram({
      name: METRIC.reconstructionError,
      help: 'Reconstruction error of each scored row; a shifting distribution signals input drift',
      buckets: [...scoreBuckets],
      registers,
    }),
    threshold: new Gauge({
      name: METRIC.threshold,
      help: 'Reconstruction error above which a row is called anomalous',
      aggregator: 'first',
      registers,
    }),
    ...createApiKeyMetrics(registers),
    lastInference: new Gauge({
      name: METRIC.lastInference,
      help: 'When the last forward pass was made, in seconds since the epoch',
      aggregator: 'max',
      registers,
    }),
    modelInfo: new Gauge({
      name: METRIC.modelInfo,
      help: 'The model being served (always 1)',
      labelNames: ['model', 'version', 'backend'] as const,
      aggregator: 'first',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The drift gauges, in a registry of their own: a cluster's are computed once from all workers'
 * windows merged, not summed (see drift.ts).
 */
export function createDriftMetrics() {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    windowScores: new Gauge({ name: METRIC.driftWindowScores, help: 'Scores in the drift window (DRIFT_WINDOW_SIZE, DRIFT_WINDOW_SECONDS)', registers }),
    windowAnomalyRate: new Gauge({ name: METRIC.driftWindowAnomalyRate, help: 'Share of the drift window\'s scores above the threshold', registers }),
    expectedAnomalyRate: new Gauge({
      name: METRIC.expectedAnomalyRate,
      help: 'Share of the calibration\'s normal rows above the threshold: the anomaly rate of traffic like the calibration (models with a calibration)',
      registers,
    }),
    ksStatistic: new Gauge({
      name: METRIC.driftKsStatistic,
      help: 'Kolmogorov-Smirnov statistic of the drift window against the calibration: the largest gap between their cumulative shares, 0 to 1',
      registers,
    }),
    ksPValue: new Gauge({
      name: METRIC.driftKsPValue,
      help: 'p-value of that test: how likely a gap that large is if recent traffic scores like the calibration; small means drift',
      registers,
    }),
  };
}

/** prom-client's JSON form of a registry's metrics (`Registry.getMetricsAsJSON`). */
export type MetricsSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The metrics of every process serving the port: this one, or all workers of a cluster. */
export interface MetricsView {
  /** In Prometheus' text format. */
  text(): Promise<string>;
  /** As prom-client's JSON, for the figures the APIs report (e.g. Triton's statistics). */
  json(): Promise<MetricsSnapshot>;
}

/** What a view needs of the drift monitor (drift.ts): its gauges' snapshot. */
export interface DriftGauges {
  gauges(): Promise<MetricsSnapshot>;
}

/** The view of a single process's own registry and drift gauges. */
export function localMetrics(registry: Registry, drift: DriftGauges): MetricsView {
  return {
    text: async () => (await registry.metrics()) + (await AggregatorRegistry.aggregate([await drift.gauges()]).metrics()),
    json: async () => [...(await registry.getMetricsAsJSON()), ...(await drift.gauges())],
  };
}

/** The view of metrics that another process summed (a cluster primary): text from the JSON. */
export function summedMetrics(json: () => Promise<MetricsSnapshot>): MetricsView {
  return { text: async () => AggregatorRegistry.aggregate([await json()]).metrics(), json };
}
