import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
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

/** Every metric the server exports, in one registry (listed in docs/metrics.md, generated from it). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const httpLabels = ['method', 'route', 'status'] as const;
  return {
    registry,
    httpRequests: new Counter({
      name: METRIC.httpRequests,
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: httpLabels,
      registers,
    }),
    httpDuration: new Histogram({
      name: METRIC.httpDuration,
      help: 'Time from receiving a request to answering it',
      labelNames: httpLabels,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
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
    }),
    batchSize: new Histogram({
      name: METRIC.batchSize,
      help: 'Rows scored in one forward pass (concurrent requests are coalesced)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
    queueWait: new Histogram({
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
    reconstructionError: new Histogram({
      name: METRIC.reconstructionError,
      help: 'Reconstruction error of each scored row; a shifting distribution signals input drift',
      buckets: [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5],
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

/** prom-client's JSON form of a registry's metrics (`Registry.getMetricsAsJSON`). */
export type MetricsSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The metrics of every process serving the port: this one, or all workers of a cluster. */
export interface MetricsView {
  /** In Prometheus' text format. */
  text(): Promise<string>;
  /** As prom-client's JSON, for the figures the APIs report (e.g. Triton's statistics). */
  json(): Promise<MetricsSnapshot>;
}

/** The view of a single process's own registry. */
export function localMetrics(registry: Registry): MetricsView {
  return { text: () => registry.metrics(), json: () => registry.getMetricsAsJSON() };
}

/** The view of metrics that another process summed (a cluster primary): text from the JSON. */
export function summedMetrics(json: () => Promise<MetricsSnapshot>): MetricsView {
  return { text: async () => AggregatorRegistry.aggregate([await json()]).metrics(), json };
}
