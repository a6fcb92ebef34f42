/**
 * The names the server and the Kubernetes charts share, so a probe path or an environment
 * variable cannot be renamed on one side only.
 */

/** The server's defaults that the charts also write into the ConfigMap (config.ts reads them). */
export const SERVER_DEFAULTS = {
  port: 8080,
  /** Where the image keeps the bundled model, relative to the working directory. */
  modelPath: 'model/artifacts',
  maxBatchSize: 64,
  logLevel: 'info',
  shutdownDelaySeconds: 5,
  shutdownTimeoutSeconds: 25,
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
  modelName: 'MODEL_NAME',
  modelPath: 'MODEL_PATH',
  threshold: 'THRESHOLD',
  maxBatchSize: 'MAX_BATCH_SIZE',
  maxBodyBytes: 'MAX_BODY_BYTES',
  webConcurrency: 'WEB_CONCURRENCY',
  shutdownDelaySeconds: 'SHUTDOWN_DELAY_SECONDS',
  shutdownTimeoutSeconds: 'SHUTDOWN_TIMEOUT_SECONDS',
  logLevel: 'LOG_LEVEL',
  backend: 'BACKEND',
  versionLabels: 'MODEL_VERSION_LABELS',
} as const;

/** The prefix of every metric the server exports. */
export const METRIC_PREFIX = 'anomaly_serve_';

/** The numeric user (and group) the server runs as: the image's USER and the pods' runAsUser. */
export const CONTAINER_USER = 10001;
