import { Hono, type Context, type Handler, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { compress } from 'hono/compress';
import { HTTPException } from 'hono/http-exception';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import {
  BatchFailedError,
  InvalidRequestError,
  NotFoundError,
  NotReadyError,
  OverloadedError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  UnsupportedOperationError,
} from './errors.ts';
import { InvalidInstanceError } from '../model/instances.ts';
import { requireApiKey, type ApiKeys } from './api-keys.ts';
import type { Logger } from '../lib/logger.ts';
import type { Metrics, MetricsView } from './metrics.ts';
import { OPEN_PATHS, PATHS } from './contract.ts';
import { TF_SERVING_PREDICT_ROUTES, tfServingRoutes } from './protocols/tfserving.ts';
import { modelInPath, V2_INFER_ROUTES, v2Routes } from './protocols/v2.ts';
import { v2ExtensionRoutes } from './protocols/v2-extensions.ts';
import { acceptsCompression } from './protocols/framing.ts';
import { uiRoutes } from './ui/routes.ts';
import type { ServingState } from './serving.ts';
import { incomingOf, requestHeader } from './node-request.ts';

export interface AppDeps {
  readonly state: ServingState;
  readonly modelName: string;
  readonly maxBodyBytes: number;
  /** Answers of at least this many bytes are compressed for a client that accepts it (COMPRESSION_THRESHOLD_BYTES). */
  readonly compressionThresholdBytes: number;
  /** Most instances in one request (MAX_BATCH_SIZE): requests are checked against it before parsing. */
  readonly maxBatchSize: number;
  /** TensorFlow Serving version labels (MODEL_VERSION_LABELS). @default stable and latest: the served version */
  readonly versionLabels?: Readonly<Record<string, string>>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly server: { readonly name: string; readonly version: string };
  /** The metrics of every process serving this port (all workers, in cluster mode). */
  readonly metricsView: MetricsView;
  /** The keys a request must carry (API_KEYS_FILE). @default none: the API is open */
  readonly apiKeys?: Pick<ApiKeys, 'has'>;
}

type Status = 400 | 401 | 403 | 404 | 413 | 415 | 500 | 503;

/**
 * Each domain error's HTTP status, and the reason the rejected-requests metric counts it under;
 * anything else is a 500 that is logged as a fault.
 */
const REJECTION_OF = new Map<new (...args: never[]) => Error, { readonly status: Status; readonly reason: string }>([
  [InvalidRequestError, { status: 400, reason: 'invalid_request' }],
  [InvalidInstanceError, { status: 400, reason: 'invalid_request' }],
  [UnsupportedOperationError, { status: 403, reason: 'unsupported_operation' }],
  [NotFoundError, { status: 404, reason: 'not_found' }],
  [PayloadTooLargeError, { status: 413, reason: 'payload_too_large' }],
  [UnsupportedMediaTypeError, { status: 415, reason: 'unsupported_media_type' }],
  [NotReadyError, { status: 503, reason: 'not_ready' }],
  // Logged once for its whole batch by the batcher.
  [BatchFailedError, { status: 500, reason: 'batch_failed' }],
]);

/** How long a client that was shed should wait before it retries (Retry-After, in seconds). */
const RETRY_AFTER_SECONDS = 1;

/** Methods whose routes take no body: one sent with them is refused before anything else is read. */
const BODILESS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/** JSON, text (/metrics, the page) and binary tensor data. */
const COMPRESSIBLE = /^(?:application\/(?:json|octet-stream|javascript)|text\/)/i;

/**
 * The body length a request declares in Content-Length, in bytes; undefined when it declares none,
 * as a chunked body (Transfer-Encoding) does: Node.js refuses a request that carries both (400
 * from its parser, llhttp), so Transfer-Encoding need not be looked up as well.
 */
function declaredLength(c: Context): number | undefined {
  const length = requestHeader(c, 'content-length');
  return length === undefined ? undefined : Number(length);
}

const noRoute = (c: Context) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);

type Answer = Response | Promise<Response>;

/**
 * A Hono middleware run around `inner` outside Hono's compose: `inner`'s answer becomes the
 * context's, which the middleware may replace (compression) or answer in place of. Only the
 * route's own answer is set, as compose sets it: an inner middleware's (compression's around
 * bodyLimit's) is the context's already, and setting it again would copy it, headers and all.
 */
const around = (middleware: MiddlewareHandler, c: Context, inner: () => Answer) => async (): Promise<Response> => {
  const answer = await middleware(c, async () => {
    const response = await inner();
    if (!c.finalized) c.res = response;
  });
  return answer ?? c.res;
};

/**
 * The handlers registered for one route, as one: each answers or passes on with next(), in turn,
 * as Hono runs them (GET /v2/models/:name has two: Triton's statistics of every model, which
 * answers the name "stats", and the model's metadata).
 */
function inTurn(handlers: readonly Handler[]): Handler {
  if (handlers.length === 1) return handlers[0]!;
  return (c, next) => {
    const from = async (i: number): Promise<void> => {
      const response = i === handlers.length ? await next() : await handlers[i]!(c, () => from(i + 1));
      if (response) c.res = response;
    };
    return from(0).then(() => c.res);
  };
}

/** The HTTP application: routes and what every request passes, no listening socket (server.ts owns that). */
export function createApp(deps: AppDeps): Hono {
  const { state, metrics, logger } = deps;
  const rejected = (reason: string) => metrics.requestsRejected.inc({ reason });

  // Rejections are counted by reason and logged at debug level only: a client sending bad
  // requests in a loop must not be able to fill the log.
  const errorResponse = (error: unknown, c: Context): Response => {
    if (error instanceof HTTPException) {
      // bearerAuth's answers (401, 400), complete with their challenge.
      rejected(error.status === 401 ? 'unauthorized' : 'invalid_request');
      logger.debug({ status: error.status, path: c.req.path }, 'request not authorised');
      return error.getResponse();
    }
    if (error instanceof OverloadedError) {
      rejected(error.reason);
      logger.debug({ status: 503, path: c.req.path, reason: error.reason }, 'request shed');
      return c.json({ error: error.message }, 503, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
    }
    const rejection = error instanceof Error ? REJECTION_OF.get(error.constructor as new () => Error) : undefined;
    if (rejection === undefined) {
      logger.error({ err: error, path: c.req.path }, 'request failed');
      return c.json({ error: 'internal error; see the server log' }, 500);
    }
    rejected(rejection.reason);
    logger.debug({ status: rejection.status, path: c.req.path, error: (error as Error).message }, 'request rejected');
    return c.json({ error: (error as Error).message }, rejection.status);
  };

  // Accept-Encoding gzip or deflate, above a small size; only looked at when a client asks, so
  // that the answers to the many that do not (load balancers' probes, most SDKs) cost nothing more.
  const compression = compress({ threshold: deps.compressionThresholdBytes, contentTypeFilter: COMPRESSIBLE });
  // Before the body is read: a caller without a key costs a header lookup and a hash.
  const apiKey = deps.apiKeys && requireApiKey(deps.apiKeys, deps.server.name);
  /**
   * The route's answer once the API key has been checked. bearerAuth does nothing after its
   * `next()`, so it runs on its own, before the route, rather than around it: a request that waits
   * for its forward pass would otherwise come back through bearerAuth's async levels and ours,
   * three promises more after the pass.
   */
  const keyChecked =
    apiKey &&
    (async (c: Context, run: () => Answer): Promise<Response> => {
      const refusal = await apiKey(c, async () => {});
      return refusal ?? (await run());
    });
  const tooLarge = () => {
    throw new PayloadTooLargeError(`the request body is larger than ${deps.maxBodyBytes} bytes (MAX_BODY_BYTES)`);
  };
  // Only a body of no declared length goes through bodyLimit, which counts as it reads but makes
  // @hono/node-server build a full Request (a third of a request's cost).
  const streamingLimit = bodyLimit({ maxSize: deps.maxBodyBytes, onError: tooLarge });

  /**
   * What a request passes before its route, from its headers alone: no body on GET or HEAD,
   * answered before the key is checked and before a byte is read, the connection closed after; a
   * declared length within MAX_BODY_BYTES; the API key; compression when asked for; a body of no
   * declared length counted as it is read.
   */
  const guarded = (c: Context, handle: () => Answer): Answer => {
    const bodiless = BODILESS_METHODS.has(c.req.method);
    const length = declaredLength(c);
    if (bodiless) {
      // A declared length, or none because the body is chunked.
      if (length === undefined ? requestHeader(c, 'transfer-encoding') !== undefined : length !== 0) {
        rejected('body_not_allowed');
        return c.json({ error: `${c.req.method} ${c.req.path} takes no request body` }, 400, { Connection: 'close' });
      }
    } else if (length !== undefined && length > deps.maxBodyBytes) {
      tooLarge();
    }
    let run = handle;
    if (length === undefined && !bodiless) run = around(streamingLimit, c, run);
    if (acceptsCompression(c)) run = around(compression, c, run);
    if (keyChecked && !OPEN_PATHS.has(c.req.path)) return keyChecked(c, run);
    return run();
  };

  /** The answer's connection header, its metrics and its log line, once it is known. */
  const finished = (c: Context, route: string, start: number, answer: Response): Response => {
    // Once draining, ask clients to reconnect elsewhere instead of reusing this connection. An
    // answer given before a body of unbounded length has all arrived (chunked, or declared past
    // MAX_BODY_BYTES) closes the connection too: Node.js would otherwise read and discard the
    // rest, however long it is. A body of a declared length within the limit is read and
    // discarded, and the connection kept: closing it would cost a shed client a reconnection.
    const incoming = incomingOf(c);
    if (state.draining || (incoming !== undefined && !incoming.complete && !((declaredLength(c) ?? Infinity) <= deps.maxBodyBytes))) {
      c.res = answer;
      c.header('Connection', 'close');
      answer = c.res;
    }
    const { method } = c.req;
    const status = String(answer.status);
    const seconds = (performance.now() - start) / 1000;
    metrics.httpDuration.series(method, route, status).observe(seconds);
    // Checked first: the line's object would be built on every request, at any level.
    if (logger.isLevelEnabled('debug')) logger.debug({ method, route, status, path: c.req.path, ms: seconds * 1000 }, 'request');
    return answer;
  };

  /**
   * A request's answer from `handle`, its route's handler, through the guard, with its errors
   * mapped and its metrics observed. Not Hono middleware: Hono runs a route with middleware through
   * its compose, an async function and a resumption a level for every request, where it calls a
   * route's only handler directly (docs/benchmarks.md measures the difference). Not an async
   * function either, for the same reason.
   */
  const answered = (c: Context, route: string, handle: () => Answer): Promise<Response> => {
    const start = performance.now();
    let answer: Promise<Response>;
    try {
      answer = Promise.resolve(guarded(c, handle));
    } catch (error) {
      answer = Promise.reject(error);
    }
    return answer.then(
      (response) => finished(c, route, start, response),
      (error: unknown) => finished(c, route, start, errorResponse(error, c)),
    );
  };

  // The protocol adapters' routes, each of which the app runs through `answered`, labelled in the
  // metrics by its path.
  const adapters = new Hono();
  adapters.route('/', tfServingRoutes(deps));
  // Before the V2 routes: /v2/models/stats would otherwise be read as a model named "stats".
  adapters.route(
    '/',
    v2ExtensionRoutes({
      ...deps,
      inferenceRoutes: [...V2_INFER_ROUTES, ...TF_SERVING_PREDICT_ROUTES],
      modelInPath: (c) => modelInPath(c, state, deps.modelName),
    }),
  );
  adapters.route('/', v2Routes(deps));
  adapters.route('/', uiRoutes(deps));
  const handlers = Map.groupBy(adapters.routes, ({ method, path }) => `${method} ${path}`);

  // One regular expression matches a request to its route (65 ns here, against 560 ns and 2 KB
  // of garbage for the TrieRouter that Hono's default falls back to, without a word, when a route
  // does not fit it): a route that does not fit fails every request of the tests instead.
  const app = new Hono({ router: new RegExpRouter() });
  for (const routes of handlers.values()) {
    const { method, path } = routes[0]!;
    const handler = inTurn(routes.map((route) => route.handler));
    app.on(method, path, (c, next) => answered(c, path, () => handler(c, next) as Answer));
  }
  app.notFound((c) =>
    answered(c, 'unmatched', () => {
      rejected('not_found');
      return noRoute(c);
    }),
  );
  // Anything that fails outside a route's answer (in Hono itself) is answered the same way.
  app.onError(errorResponse);
  return app;
}

export interface MetricsAppDeps {
  readonly metricsView: MetricsView;
  readonly metrics: Metrics;
  readonly logger: Logger;

}

/**
 * The metrics port's application: GET /metrics and nothing else, so that the port Prometheus
 * scrapes can be kept from clients and the port clients call shows nothing of the process.
 */
export function createMetricsApp({ metricsView, metrics, logger }: MetricsAppDeps): Hono {
  const app = new Hono();
  // Prometheus asks for gzip; the text is tens of kilobytes (and streamed without a length, so
  // compressed whatever its size).
  app.use(compress());
  app.get(PATHS.metrics, async (c) => c.text(await metricsView.text(), 200, { 'Content-Type': metrics.registry.contentType }));
  app.notFound(noRoute);
  app.onError((error, c) => {
    logger.error({ err: error, path: c.req.path }, 'metrics request failed');
    return c.json({ error: 'internal error; see the server log' }, 500);
  });
  return app;
}
