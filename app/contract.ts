/**
 * The names the server and the Kubernetes charts share, so a probe path or an environment
 * variable cannot be renamed on one side only.
 */
export const DEFAULT_PORT = 8080;
export const DEFAULT_MODEL_NAME = 'ecg-autoencoder';
/** Where the image keeps the bundled model, relative to the working directory. */
export const DEFAULT_MODEL_PATH = 'model/artifacts';

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
