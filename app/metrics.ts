import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRIC_PREFIX } from './contract.ts';

const name = (suffix: string) => `${METRIC_PREFIX}${suffix}`;

/**
 * The API keys' metrics. A cluster primary, which reads the keys file for its workers, registers
 * these alone in a registry of its own (see ClusterMetrics).
 */
export function createApiKeyMetrics(registers: Registry[]) {
  return {
    apiKeysReloadFailures: new Counter({
      name: name('api_keys_reload_failures_total'),
      help: 'Changes of API_KEYS_FILE that could not be loaded (the keys in force were kept)',
      registers,
    }),
    apiKeysLastLoad: new Gauge({
      name: name('api_keys_last_load_timestamp_seconds'),
      help: 'When the API keys in force were last loaded from API_KEYS_FILE, in seconds since the epoch',
      // One process reads the file (a cluster's primary): the others report 0.
      aggregator: 'max',
      registers,
    }),
  };
}

/** Every metric the server exports, in one registry (listed in the README). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const httpLabels = ['method', 'route', 'status'] as const;
  return {
    registry,
    httpRequests: new Counter({
      name: name('http_requests_total'),
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: httpLabels,
      registers,
    }),
    httpDuration: new Histogram({
      name: name('http_request_duration_seconds'),
      help: 'Time from receiving a request to answering it',
      labelNames: httpLabels,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    requestsRejected: new Counter({
      name: name('requests_rejected_total'),
      help: 'Requests answered with an error of the client\'s or of load, by reason (invalid_request, unauthorized, queue_full, queue_timeout, ...)',
      labelNames: ['reason'] as const,
      registers,
    }),
    inFlight: new Gauge({
      name: name('inference_requests_in_flight'),
      help: 'Inference requests accepted and not yet answered: queued for a forward pass or in one',
      registers,
    }),
    batchSize: new Histogram({
      name: name('batch_size'),
      help: 'Rows scored in one forward pass (concurrent requests are coalesced)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
    queueWait: new Histogram({
      name: name('batch_queue_wait_seconds'),
      help: 'Time a request waits for its forward pass to start',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    forwardPass: new Histogram({
      name: name('forward_pass_seconds'),
      help: 'Time of one forward pass of the model, normalisation and scoring included',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    }),
    instancesScored: new Counter({
      name: name('instances_scored_total'),
      help: 'Rows (instances) scored',
      registers,
    }),
    anomalies: new Counter({
      name: name('anomalies_total'),
      help: 'Rows scored as anomalous',
      registers,
    }),
    reconstructionError: new Histogram({
      name: name('reconstruction_error'),
      help: 'Reconstruction error of each scored row; a shifting distribution signals input drift',
      buckets: [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5],
      registers,
    }),
    threshold: new Gauge({
      name: name('threshold'),
      help: 'Reconstruction error above which a row is called anomalous',
      aggregator: 'first',
      registers,
    }),
    ...createApiKeyMetrics(registers),
    lastInference: new Gauge({
      name: name('last_inference_timestamp_seconds'),
      help: 'When the last forward pass was made, in seconds since the epoch',
      aggregator: 'max',
      registers,
    }),
    modelInfo: new Gauge({
      name: name('model_info'),
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
