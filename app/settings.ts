import { z } from 'zod';
import { BUNDLED_MODEL_DIR, nameSchema } from '../model/artifact.ts';
import { BACKEND_NAMES } from '../model/backend.ts';

/**
 * The server's settings, each declared once: its environment variable, its schema, its default and
 * one line of documentation; then the rules between settings. The server parses its environment
 * with this table (loadConfig), the charts write their ConfigMap through it (environmentOf), and
 * docs/configuration.md's table is generated from it (scripts/docs.ts).
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Numbers are read in decimal only: `Number()` would also take "0x1F90", "0b1", "1e3" or
 * "Infinity", which nobody means as a port or a batch size.
 */
const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a decimal integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
/** A non-negative decimal such as 0.05 or 2.5e-3 (what JavaScript's String(number) writes). */
const real = z
  .string()
  .regex(/^\d+(\.\d+)?(e[-+]?\d+)?$/i, 'expected a non-negative decimal number such as 0.05')
  .transform(Number)
  .pipe(z.number().finite());
/** The largest values of the bounded settings (the benchmark's "unbounded" queue is these). */
export const SETTING_MAXIMA = { queuedRows: 1_048_576, seconds: 3600 } as const;

const seconds = real.pipe(z.number().max(SETTING_MAXIMA.seconds));
const positiveSeconds = seconds.pipe(z.number().positive());

interface Setting<T> {
  /** The environment variable that carries it. */
  readonly variable: string;
  /** Parses the variable's (trimmed) text. */
  readonly schema: z.ZodType<T, string>;
  /** Its value when the variable is unset. */
  readonly default: T | undefined;
  /** The default as the reference states it, where it is not a value (the model's own, say). */
  readonly defaultText?: string;
  /** One line for the reference. */
  readonly doc: string;
  /** Writes a value as the variable's text (String() unless given). */
  readonly format?: (value: T) => string;
}

/** A setting with a default value. */
const setting = <T>(variable: string, schema: z.ZodType<T, string>, defaultValue: T, doc: string, format?: (value: T) => string): Setting<T> => ({
  variable,
  schema,
  default: defaultValue,
  doc,
  format,
});
/** A setting that is undefined when unset; `defaultText` says what holds then. */
const unsetByDefault = <T>(variable: string, schema: z.ZodType<T, string>, defaultText: string, doc: string, format?: (value: T) => string): Setting<T | undefined> => ({
  variable,
  schema,
  default: undefined,
  defaultText,
  doc,
  format: format as ((value: T | undefined) => string) | undefined,
});

/**
 * In the order the reference lists them and the charts write them (the ConfigMap's hash, which rolls
 * the pods, is of that order).
 */
export const SETTINGS = {
  host: setting('HOST', z.string(), '0.0.0.0', 'interface to listen on'),
  port: setting('PORT', integer(0, 65535), 8080, "the API's port"),
  metricsPort: setting(
    'METRICS_PORT',
    integer(0, 65535),
    8082,
    "the port of `GET /metrics`, and nothing else (MLServer's default), so that the two can be exposed apart; must differ from `PORT`",
  ),
  modelName: unsetByDefault('MODEL_NAME', nameSchema, '`name` in metadata.json', 'the name in the URLs'),
  modelPath: setting('MODEL_PATH', z.string(), BUNDLED_MODEL_DIR, 'folder with model.json, weights.bin, metadata.json (relative to the working directory)'),
  maxBatchSize: setting('MAX_BATCH_SIZE', integer(1, 4096), 64, 'most rows in one forward pass, and so in one request'),
  maxQueuedRows: setting(
    'MAX_QUEUED_ROWS',
    integer(1, SETTING_MAXIMA.queuedRows),
    // 64 full batches: 64 clients each sending MAX_BATCH_SIZE rows at once are queued, not shed.
    4096,
    'rows waiting for a forward pass past which a request is shed: 503 with `Retry-After` (see [Reliability](reliability.md))',
  ),
  maxQueueWaitSeconds: setting('MAX_QUEUE_WAIT_SECONDS', positiveSeconds, 1, 'a request that waited longer than this for its forward pass is shed the same way'),
  maxBodyBytes: setting('MAX_BODY_BYTES', integer(1024, 256 * 1024 * 1024), 1024 * 1024, 'largest request body'),
  compressionThresholdBytes: setting(
    'COMPRESSION_THRESHOLD_BYTES',
    integer(0, 1024 * 1024 * 1024),
    // Below about a kilobyte, gzip saves too little to pay for its CPU.
    1024,
    'answers of at least this many bytes are compressed, gzip or deflate, for a client that accepts it; `0` compresses every answer',
  ),
  webConcurrency: setting('WEB_CONCURRENCY', integer(1, 64), 1, 'serving processes (node:cluster workers) on the one port'),
  logLevel: setting('LOG_LEVEL', z.enum(LOG_LEVELS), 'info', '`fatal`, `error`, `warn`, `info`, `debug` (a line per request and per rejection), `trace`, `silent`'),
  shutdownDelaySeconds: setting('SHUTDOWN_DELAY_SECONDS', seconds, 5, 'how long to keep serving after SIGTERM while load balancers notice'),
  shutdownTimeoutSeconds: setting(
    'SHUTDOWN_TIMEOUT_SECONDS',
    seconds,
    25,
    "the drain's deadline from SIGTERM: what is still unfinished then has its connection closed, and the process exits 0; must hold `SHUTDOWN_DELAY_SECONDS` + `REQUEST_TIMEOUT_SECONDS`",
  ),
  headersTimeoutSeconds: setting(
    'HEADERS_TIMEOUT_SECONDS',
    positiveSeconds,
    10,
    "a request's headers must arrive within this (slow-header attacks), or it is answered 408 and the connection closed",
  ),
  requestTimeoutSeconds: setting(
    'REQUEST_TIMEOUT_SECONDS',
    positiveSeconds,
    15,
    "the same for the whole request, body included (Node.js' default is 300)",
  ),
  writeTimeoutSeconds: setting(
    'WRITE_TIMEOUT_SECONDS',
    positiveSeconds,
    15,
    'a connection whose answer moves no byte for this long (a client that does not read it) is closed, as checked every second',
  ),
  keepAliveTimeoutSeconds: setting(
    'KEEP_ALIVE_TIMEOUT_SECONDS',
    seconds,
    // Google's advice for backends of its load balancers: above 620 s.
    620,
    'how long an idle connection is kept: longer than Google Cloud load balancers keep theirs (600 s), so that they close it first and never send on a connection the server is closing',
  ),
  threshold: unsetByDefault('THRESHOLD', real, 'from metadata.json', 'overrides the anomaly threshold'),
  driftWindowSize: setting(
    'DRIFT_WINDOW_SIZE',
    integer(10, 100_000),
    // Enough for the drift test to see a shift of a tenth of the calibration's spread, few enough to follow a change within minutes.
    1000,
    'the most recent scores the drift gauges test against the calibration, all workers together (see [Metrics](metrics.md#drift))',
  ),
  driftWindowSeconds: setting('DRIFT_WINDOW_SECONDS', positiveSeconds, 600, 'scores older than this leave the drift window'),
  backend: unsetByDefault('BACKEND', z.enum(BACKEND_NAMES), 'fastest available', '`tensorflow`, `wasm` or `cpu`; fails at start-up if not available'),
  versionLabels: unsetByDefault(
    'MODEL_VERSION_LABELS',
    z
      .string()
      .regex(/^[\w.-]+=\d+(?:,[\w.-]+=\d+)*$/, 'expected label=version pairs separated by commas, e.g. stable=81283393578164,canary=81283393578164')
      .transform((pairs) => Object.fromEntries(pairs.split(',').map((pair) => pair.split('=') as [string, string]))),
    '`stable` and `latest`: the served version',
    'TensorFlow Serving version labels, `label=version` pairs separated by commas',
    (labels) => Object.entries(labels).map((pair) => pair.join('=')).join(','),
  ),
  apiKeysFile: unsetByDefault('API_KEYS_FILE', z.string(), 'unset: no key asked', 'a file of API keys, one a line (see [Security](security.md)); the charts set it'),
};

type Settings = typeof SETTINGS;
type ValueOf<S> = S extends Setting<infer T> ? T : never;
export type Config = { readonly [K in keyof Settings]: ValueOf<Settings[K]> };
export type SettingKey = keyof Settings;

const KEYS = Object.keys(SETTINGS) as SettingKey[];
const byKey = <V>(value: (key: SettingKey) => V) => Object.fromEntries(KEYS.map((key) => [key, value(key)]));

/** Each setting's environment variable, by key. */
export const ENV = byKey((key) => SETTINGS[key].variable) as { readonly [K in SettingKey]: string };

/** The server's defaults: what it runs with when the environment sets nothing. */
export const DEFAULTS = byKey((key) => SETTINGS[key].default) as Config;

/** A rule between settings: the message that refuses them, or undefined. */
type Rule = (config: Config) => string | undefined;

const RULES: readonly Rule[] = [
  (c) =>
    c.shutdownDelaySeconds + c.requestTimeoutSeconds > c.shutdownTimeoutSeconds
      ? `${ENV.shutdownDelaySeconds}=${c.shutdownDelaySeconds} plus ${ENV.requestTimeoutSeconds}=${c.requestTimeoutSeconds} ` +
        `must not be longer than ${ENV.shutdownTimeoutSeconds}=${c.shutdownTimeoutSeconds}: a request accepted at the end of the delay ` +
        'could still be arriving at the deadline, which would cut it short'
      : undefined,
  (c) => (c.metricsPort === c.port && c.port !== 0 ? `${ENV.metricsPort}=${c.metricsPort} is also ${ENV.port}: the metrics need a port of their own` : undefined),
  (c) =>
    c.headersTimeoutSeconds > c.requestTimeoutSeconds
      ? `${ENV.headersTimeoutSeconds}=${c.headersTimeoutSeconds} must not be longer than ${ENV.requestTimeoutSeconds}=${c.requestTimeoutSeconds}: ` +
        'the headers are part of the request'
      : undefined,
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the server's environment once. An invalid value stops start-up with a message naming the
 * variable and the value, rather than surfacing later as a confusing failure. A variable that is
 * set but empty is an error too, not the default: `PORT=` is more likely a missing value in a
 * script or manifest than a request for 8080.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {};
  for (const key of KEYS) {
    const { variable, schema } = SETTINGS[key] as Setting<unknown>;
    const raw = env[variable];
    if (raw === undefined) {
      config[key] = SETTINGS[key].default;
      continue;
    }
    if (raw.trim() === '') throw new ConfigError(`${variable}=${JSON.stringify(raw)} is empty: give it a value, or unset it for the default`);
    const parsed = schema.safeParse(raw.trim());
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw new ConfigError(`${variable}=${JSON.stringify(raw)} is invalid: ${reason}`);
    }
    config[key] = parsed.data;
  }
  const result = config as Config;
  for (const rule of RULES) {
    const message = rule(result);
    if (message !== undefined) throw new ConfigError(message);
  }
  return result;
}

/**
 * The environment that sets `settings` (in the table's order; undefined ones left unset), checked
 * as the server will read it: what the server would refuse throws ConfigError here.
 */
export function environmentOf(settings: Partial<Config>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of KEYS) {
    const value = settings[key];
    if (value === undefined) continue;
    const { variable, format = String } = SETTINGS[key] as Setting<unknown>;
    env[variable] = format(value);
  }
  loadConfig(env);
  return env;
}
