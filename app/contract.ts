/**
 * The names the server and the Kubernetes charts share, so a probe path or an environment
 * variable cannot be renamed on one side only.
 */

/** The server's defaults (config.ts reads them; the charts write the ones a ConfigMap sets). */
export const SERVER_DEFAULTS = {
  port: 8080,
  /** GET /metrics is served here only, apart from the API, so that the two can be exposed apart (MLServer's default). */
  metricsPort: 8082,
  /** Where the image keeps the bundled model, relative to the working directory. */
  modelPath: 'model/artifacts',
  maxBatchSize: 64,
  /**
   * Rows waiting for a forward pass past which requests are shed (503): 64 full batches, so that
   * 64 clients each sending MAX_BATCH_SIZE rows at once are queued, not shed.
   */
  maxQueuedRows: 4096,
  /** Longest a request waits for its forward pass before it is shed (503). */
  maxQueueWaitSeconds: 1,
  logLevel: 'info',
  shutdownDelaySeconds: 5,
  shutdownTimeoutSeconds: 25,
  /** Longest a client may take to send a request's headers (slow-header attacks). */
  headersTimeoutSeconds: 10,
  /**
   * Longest a client may take to send a whole request, body included (Node.js' default is 300 s).
   * With the shutdown delay it fits in the shutdown timeout, so a drain never cuts a request short.
   */
  requestTimeoutSeconds: 15,
  /** Longest a client may leave an answer unread (no byte taken) before its connection is closed. */
  writeTimeoutSeconds: 15,
  /**
   * How long an idle keep-alive connection stays open: longer than Google Cloud load balancers keep
   * theirs to a backend (600 s), so that the load balancer, not the server, closes it and never
   * sends a request on a connection the server is closing (Google's advice: above 620 s).
   */
  keepAliveTimeoutSeconds: 620,
} as const;

/** HTTP limits set on the server, not configurable: a request may carry at most this much header. */
export const HTTP_LIMITS = {
  /** Headers past the 100th are dropped (Node.js' default keeps 2,000). */
  maxHeadersCount: 100,
  /** A request whose headers are larger is answered 431 (Node.js' default, set on purpose). */
  maxHeaderSizeBytes: 16 * 1024,
} as const;

export const PATHS = {
  live: '/v2/health/live',
  ready: '/v2/health/ready',
  metrics: '/metrics',
} as const;

/** Environment variables the server reads (see app/config.ts for their defaults and checks). */
export const ENV = {
  host: 'HOST',
  port: 'PORT',
  metricsPort: 'METRICS_PORT',
  modelName: 'MODEL_NAME',
  modelPath: 'MODEL_PATH',
  threshold: 'THRESHOLD',
  maxBatchSize: 'MAX_BATCH_SIZE',
  maxQueuedRows: 'MAX_QUEUED_ROWS',
  maxQueueWaitSeconds: 'MAX_QUEUE_WAIT_SECONDS',
  maxBodyBytes: 'MAX_BODY_BYTES',
  webConcurrency: 'WEB_CONCURRENCY',
  shutdownDelaySeconds: 'SHUTDOWN_DELAY_SECONDS',
  shutdownTimeoutSeconds: 'SHUTDOWN_TIMEOUT_SECONDS',
  headersTimeoutSeconds: 'HEADERS_TIMEOUT_SECONDS',
  requestTimeoutSeconds: 'REQUEST_TIMEOUT_SECONDS',
  writeTimeoutSeconds: 'WRITE_TIMEOUT_SECONDS',
  keepAliveTimeoutSeconds: 'KEEP_ALIVE_TIMEOUT_SECONDS',
  logLevel: 'LOG_LEVEL',
  backend: 'BACKEND',
  versionLabels: 'MODEL_VERSION_LABELS',
  apiKeysFile: 'API_KEYS_FILE',
} as const;

/** The prefix of every metric the server exports. */
export const METRIC_PREFIX = 'anomaly_serve_';

/** The numeric user (and group) the server runs as: the image's USER and the pods' runAsUser. */
export const CONTAINER_USER = 10001;
