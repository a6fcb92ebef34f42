import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import type { Logger } from '../lib/logger.ts';
import type { Metrics } from './metrics.ts';

/**
 * API keys: the keys of API_KEYS_FILE, kept current as the file changes, and the middleware that
 * asks for one. A key is never logged nor put in an error message.
 */

/** A Bearer token's syntax (RFC 6750's b64token), which Hono's bearerAuth also requires. */
const KEY_SYNTAX = /^[A-Za-z0-9._~+/-]+=*$/;
/** Shorter keys are refused: 16 characters of `openssl rand -hex` are 64 bits. */
export const MIN_KEY_LENGTH = 16;
/**
 * How often the file is checked for a change. A Kubernetes Secret is updated by swapping a
 * symbolic link, which inotify on the old file does not report: polling stat() sees the new inode.
 */
const POLL_MS = 1000;

export class ApiKeysError extends Error {
  override name = 'ApiKeysError';
}

/** The keys of a keys file: one a line; blank lines and lines starting with `#` are skipped. */
export function parseApiKeys(text: string, file: string): string[] {
  const keys: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const key = raw.trim();
    if (key === '' || key.startsWith('#')) continue;
    const where = `${file} line ${index + 1}`;
    if (!KEY_SYNTAX.test(key)) throw new ApiKeysError(`${where}: a key may hold only letters, digits and - . _ ~ + / (and = at its end), as an HTTP Bearer token must`);
    if (key.length < MIN_KEY_LENGTH) throw new ApiKeysError(`${where}: the key has ${key.length} characters; at least ${MIN_KEY_LENGTH} are needed (openssl rand -hex 32 makes one)`);
    keys.push(key);
  }
  if (keys.length === 0) throw new ApiKeysError(`${file} holds no key: one a line, or unset API_KEYS_FILE to serve without keys`);
  return keys;
}

const digest = (key: string) => createHash('sha256').update(key).digest();
/** Digests handed over in hexadecimal (see ApiKeys.digestsHex), as bytes again. */
const fromHex = (digests: readonly string[]) => digests.map((hex) => Buffer.from(hex, 'hex'));

/** What API keys report on /metrics: failed reloads, and when the keys in force were loaded. */
export type ApiKeyMetrics = Pick<Metrics, 'apiKeysReloadFailures' | 'apiKeysLastLoad'>;

/**
 * A set of API keys, kept as SHA-256 digests: read from a file and re-read when it changes (a
 * change that cannot be read keeps the keys in force), or handed over as digests by a cluster
 * primary that reads the file for its workers.
 */
export class ApiKeys {
  private digests: readonly Buffer[];
  private readonly listeners: ((digests: readonly string[]) => void)[] = [];

  private constructor(
    digests: readonly Buffer[],
    readonly file?: string,
  ) {
    this.digests = digests;
  }

  /** Reads `file` and starts watching it. Throws ApiKeysError when it cannot be read or holds no valid key. */
  static watch(file: string, logger: Logger, metrics: ApiKeyMetrics): ApiKeys {
    const apiKeys = new ApiKeys(ApiKeys.read(file).map(digest), file);
    metrics.apiKeysLastLoad.set(Date.now() / 1000);
    watchFile(file, { interval: POLL_MS, persistent: false }, () => apiKeys.reload(logger, metrics));
    return apiKeys;
  }

  /** Keys handed over as the hexadecimal digests of `digestsHex` (never the keys themselves). */
  static ofDigests(digests: readonly string[]): ApiKeys {
    return new ApiKeys(fromHex(digests));
  }

  private static read(file: string): string[] {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ApiKeysError(`cannot read ${file}: ${(error as Error).message}`);
    }
    return parseApiKeys(text, file);
  }

  get count(): number {
    return this.digests.length;
  }

  /** The keys' digests in hexadecimal, for handing over to another process. */
  digestsHex(): string[] {
    return this.digests.map((known) => known.toString('hex'));
  }

  /** Replaces the keys with handed-over digests (see digestsHex). */
  replace(digests: readonly string[]): void {
    this.digests = fromHex(digests);
  }

  /** Calls `listener` with the new digests after each successful reload of the file. */
  onReload(listener: (digests: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Whether `key` is one of the keys. Digests of equal length are compared, each in constant time
   * and all of them, so that neither the time nor the order tells how close a guess came.
   */
  has(key: string): boolean {
    const presented = digest(key);
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(known, presented) || found;
    return found;
  }

  private reload(logger: Logger, metrics: ApiKeyMetrics): void {
    const file = this.file!;
    try {
      this.digests = ApiKeys.read(file).map(digest);
    } catch (error) {
      metrics.apiKeysReloadFailures.inc();
      logger.error({ file, keys: this.digests.length, reason: (error as Error).message }, 'API keys not reloaded: keeping the previous ones');
      return;
    }
    metrics.apiKeysLastLoad.set(Date.now() / 1000);
    logger.info({ file, keys: this.digests.length }, 'API keys reloaded');
    for (const listener of this.listeners) listener(this.digestsHex());
  }

  close(): void {
    if (this.file !== undefined) unwatchFile(this.file);
  }
}

/** The header that TensorFlow Serving's and Triton's clients can send as given. */
export const API_KEY_HEADER = 'x-api-key';

/**
 * Asks every request for a key, as `Authorization: Bearer <key>` or `x-api-key: <key>`, with
 * Hono's bearerAuth: 401 and a Bearer challenge (RFC 6750) without one or with a wrong one, 400
 * for an Authorization header that is not a Bearer token. Bodies are JSON, as every error here.
 */
export function requireApiKey(keys: Pick<ApiKeys, 'has'>, realm: string): MiddlewareHandler {
  const challenge = `Bearer realm="${realm}"`;
  const options = {
    verifyToken: (token: string) => keys.has(token),
    noAuthenticationHeader: {
      wwwAuthenticateHeader: challenge,
      message: { error: `an API key is needed: send it as "Authorization: Bearer <key>" or "${API_KEY_HEADER}: <key>"` },
    },
    invalidToken: { wwwAuthenticateHeader: `${challenge}, error="invalid_token"`, message: { error: 'the API key is not valid' } },
  };
  const bearer = bearerAuth({
    ...options,
    invalidAuthenticationHeader: {
      wwwAuthenticateHeader: `${challenge}, error="invalid_request"`,
      message: { error: 'the Authorization header must be "Bearer <key>"' },
    },
  });
  const invalidTokenResponse = () =>
    new Response(JSON.stringify(options.invalidToken.message), {
      status: 401,
      headers: { 'Content-Type': 'application/json', 'WWW-Authenticate': options.invalidToken.wwwAuthenticateHeader },
    });
  const apiKeyHeader = bearerAuth({
    ...options,
    headerName: API_KEY_HEADER,
    prefix: '',
    // A value that cannot be a key is simply not a valid one: 401, as for a wrong key (bearerAuth would say 400).
    invalidAuthenticationHeader: { message: invalidTokenResponse },
  });
  // An empty x-api-key (a client's unset variable) is no key at all: the Authorization header decides.
  return (c, next) => (c.req.header(API_KEY_HEADER) ? apiKeyHeader(c, next) : bearer(c, next));
}
