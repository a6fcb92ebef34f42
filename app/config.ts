import { z } from 'zod';
import { nameSchema } from '../model/artifact.ts';
import { BACKEND_NAMES } from '../model/backend.ts';
import { ENV, SERVER_DEFAULTS } from './contract.ts';

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
const seconds = real.pipe(z.number().max(3600));

/** Each variable: its schema, and its default when unset. */
const variables = {
  host: z.string().default('0.0.0.0'),
  port: integer(0, 65535).default(SERVER_DEFAULTS.port),
  metricsPort: integer(0, 65535).default(SERVER_DEFAULTS.metricsPort),
  /** @default the name in the model's metadata.json */
  modelName: nameSchema.optional(),
  modelPath: z.string().default(SERVER_DEFAULTS.modelPath),
  threshold: real.optional(),
  maxBatchSize: integer(1, 4096).default(SERVER_DEFAULTS.maxBatchSize),
  maxQueuedRows: integer(1, 1_048_576).default(SERVER_DEFAULTS.maxQueuedRows),
  maxQueueWaitSeconds: seconds.pipe(z.number().positive()).default(SERVER_DEFAULTS.maxQueueWaitSeconds),
  maxBodyBytes: integer(1024, 256 * 1024 * 1024).default(1024 * 1024),
  webConcurrency: integer(1, 64).default(1),
  shutdownDelaySeconds: seconds.default(SERVER_DEFAULTS.shutdownDelaySeconds),
  shutdownTimeoutSeconds: seconds.default(SERVER_DEFAULTS.shutdownTimeoutSeconds),
  headersTimeoutSeconds: seconds.pipe(z.number().positive()).default(SERVER_DEFAULTS.headersTimeoutSeconds),
  requestTimeoutSeconds: seconds.pipe(z.number().positive()).default(SERVER_DEFAULTS.requestTimeoutSeconds),
  writeTimeoutSeconds: seconds.pipe(z.number().positive()).default(SERVER_DEFAULTS.writeTimeoutSeconds),
  keepAliveTimeoutSeconds: seconds.default(SERVER_DEFAULTS.keepAliveTimeoutSeconds),
  logLevel: z.enum(LOG_LEVELS).default(SERVER_DEFAULTS.logLevel),
  backend: z.enum(BACKEND_NAMES).optional(),
  versionLabels: z
    .string()
    .regex(/^[\w.-]+=\d+(?:,[\w.-]+=\d+)*$/, 'expected label=version pairs separated by commas, e.g. stable=81283393578164,canary=81283393578164')
    .transform((pairs) => Object.fromEntries(pairs.split(',').map((pair) => pair.split('=') as [string, string])))
    .optional(),
  /** A file of API keys, one a line; unset, the API is open. */
  apiKeysFile: z.string().optional(),
};

type Variables = typeof variables;
export type Config = { readonly [K in keyof Variables]: z.output<Variables[K]> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the server's environment once. An invalid value stops start-up with a message naming the
 * variable and the value, rather than surfacing later as a confusing failure. A variable that is
 * set but empty is an error too, not the default: `PORT=` is more likely a missing value in a
 * script or manifest than a request for 8080.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(variables)) {
    const name = ENV[key as keyof typeof ENV];
    const raw = env[name];
    if (raw !== undefined && raw.trim() === '') {
      throw new ConfigError(`${name}=${JSON.stringify(raw)} is empty: give it a value, or unset it for the default`);
    }
    const parsed = (schema as z.ZodType).safeParse(raw?.trim());
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: ${reason}`);
    }
    config[key] = parsed.data;
  }
  const result = config as Config;
  if (result.shutdownDelaySeconds + result.requestTimeoutSeconds > result.shutdownTimeoutSeconds) {
    throw new ConfigError(
      `${ENV.shutdownDelaySeconds}=${result.shutdownDelaySeconds} plus ${ENV.requestTimeoutSeconds}=${result.requestTimeoutSeconds} ` +
        `must not be longer than ${ENV.shutdownTimeoutSeconds}=${result.shutdownTimeoutSeconds}: a request accepted at the end of the delay ` +
        'could still be arriving at the deadline, which would cut it short',
    );
  }
  if (result.metricsPort === result.port && result.port !== 0) {
    throw new ConfigError(`${ENV.metricsPort}=${result.metricsPort} is also ${ENV.port}: the metrics need a port of their own`);
  }
  if (result.headersTimeoutSeconds > result.requestTimeoutSeconds) {
    throw new ConfigError(
      `${ENV.headersTimeoutSeconds}=${result.headersTimeoutSeconds} must not be longer than ${ENV.requestTimeoutSeconds}=${result.requestTimeoutSeconds}: ` +
        'the headers are part of the request',
    );
  }
  return result;
}
