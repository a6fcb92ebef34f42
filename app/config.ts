import { z } from 'zod';
import { BACKEND_NAMES } from './backend.ts';
import { DEFAULT_MODEL_NAME, DEFAULT_MODEL_PATH, DEFAULT_PORT, ENV } from './contract.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const seconds = z.coerce.number().min(0).max(3600);

/** Each variable: its schema, and its default when unset or empty. */
const variables = {
  host: z.string().min(1).default('0.0.0.0'),
  port: integer(0, 65535).default(DEFAULT_PORT),
  modelName: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit')
    .default(DEFAULT_MODEL_NAME),
  modelPath: z.string().min(1).default(DEFAULT_MODEL_PATH),
  threshold: z.coerce.number().min(0).optional(),
  maxBatchSize: integer(1, 4096).default(64),
  maxBodyBytes: integer(1024, 256 * 1024 * 1024).default(1024 * 1024),
  webConcurrency: integer(1, 64).default(1),
  shutdownDelaySeconds: seconds.default(5),
  shutdownTimeoutSeconds: seconds.default(25),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  backend: z.enum(BACKEND_NAMES).optional(),
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
 * variable and the value, rather than surfacing later as a confusing failure.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(variables)) {
    const name = ENV[key as keyof typeof ENV];
    const raw = env[name]?.trim() || undefined;
    const parsed = (schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw new ConfigError(`${name}=${JSON.stringify(env[name])} is invalid: ${reason}`);
    }
    config[key] = parsed.data;
  }
  const result = config as Config;
  if (result.shutdownTimeoutSeconds <= result.shutdownDelaySeconds) {
    throw new ConfigError(
      `${ENV.shutdownTimeoutSeconds}=${result.shutdownTimeoutSeconds} must be longer than ` +
        `${ENV.shutdownDelaySeconds}=${result.shutdownDelaySeconds}: the deadline would cut the drain short`,
    );
  }
  return result;
}
