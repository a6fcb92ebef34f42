import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import { InvalidInstanceError, InvalidRequestError, NotFoundError, NotReadyError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { PATHS } from './contract.ts';
import { tfServingRoutes } from './protocols/tfserving.ts';
import { v2Routes } from './protocols/v2.ts';
import { uiRoutes } from './ui/routes.ts';
import type { ServingState } from './serving.ts';

export interface AppDeps {
  readonly state: ServingState;
  readonly modelName: string;
  readonly maxBodyBytes: number;
  /** Most instances in one request (MAX_BATCH_SIZE): requests are checked against it before parsing. */
  readonly maxBatchSize: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly server: { readonly name: string; readonly version: string };
  /** The Prometheus text of every process serving this port (all workers, in cluster mode). */
  readonly metricsText: () => Promise<string>;
}

/** Each domain error's HTTP status; anything else is a 500. */
const STATUS_OF = new Map<new (...args: never[]) => Error, 400 | 404 | 413 | 415 | 503>([
  [InvalidRequestError, 400],
  [InvalidInstanceError, 400],
  [NotFoundError, 404],
  [PayloadTooLargeError, 413],
  [UnsupportedMediaTypeError, 415],
  [NotReadyError, 503],
]);

/** The HTTP application: routes and middleware, no listening socket (server.ts owns that). */
export function createApp(deps: AppDeps): Hono {
  const { state, metrics, logger } = deps;
  const app = new Hono();

  app.use(async (c, next) => {
    const start = process.hrtime.bigint();
    await next();
    // Once draining, ask clients to reconnect elsewhere instead of reusing this connection.
    if (state.draining) c.header('Connection', 'close');
    const matched = routePath(c, -1);
    const route = matched === '/*' ? 'unmatched' : matched; // only the middleware matched
    const labels = { method: c.req.method, route, status: String(c.res.status) };
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, seconds);
    // Checked first: the line's object would be built on every request, at any level.
    if (logger.isLevelEnabled('debug')) logger.debug({ ...labels, path: c.req.path, ms: seconds * 1000 }, 'request');
  });
  const tooLarge = () => {
    throw new PayloadTooLargeError(`the request body is larger than ${deps.maxBodyBytes} bytes (MAX_BODY_BYTES)`);
  };
  const streamingLimit = bodyLimit({ maxSize: deps.maxBodyBytes, onError: tooLarge });
  app.use(async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // A declared length is checked here; only a chunked body goes through bodyLimit, which counts
    // as it reads but makes @hono/node-server build a full Request (a third of a request's cost).
    const length = c.req.header('content-length');
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) return streamingLimit(c, next);
    if (Number(length) > deps.maxBodyBytes) tooLarge();
    return next();
  });

  app.route('/', tfServingRoutes(deps));
  app.route('/', v2Routes(deps));
  app.route('/', uiRoutes(deps));
  app.get(PATHS.metrics, async (c) => c.text(await deps.metricsText(), 200, { 'Content-Type': metrics.registry.contentType }));

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    const status = STATUS_OF.get(error.constructor as new () => Error) ?? 500;
    if (status === 500) {
      logger.error({ err: error, path: c.req.path }, 'request failed');
      return c.json({ error: 'internal error; see the server log' }, 500);
    }
    logger.warn({ status, path: c.req.path, error: error.message }, 'request rejected');
    return c.json({ error: error.message }, status);
  });
  return app;
}
