import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { readMetadata } from '../model/artifact.ts';
import { fallbackNotice } from '../model/backend.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import type { Hono } from 'hono';
import { ApiKeys } from './api-keys.ts';
import { broadcastReloads, keysFromPrimary, shareKeys } from './cluster-keys.ts';
import { createApp, createMetricsApp } from './app.ts';
import { ClusterMetrics, workerMetrics } from './cluster-metrics.ts';
import { Registry } from 'prom-client';
import { ConfigError, ENV, loadConfig, type Config } from './settings.ts';
import { HTTP_LIMITS } from './contract.ts';
import { createApiKeyMetrics, createMetrics, localMetrics, scoreBuckets } from './metrics.ts';
import { DriftMonitor } from './drift.ts';
import { closeStalledWrites } from './stalled-writes.ts';
import { Calibration } from '../model/calibration.ts';
import type { ShutdownSignals } from './shutdown-signals.ts';
import type { LoadedModel, ServingState } from './serving.ts';

/**
 * The process lifecycle, in one place: listen (live), load the model (ready), and on SIGTERM or
 * SIGINT turn unready, keep serving for SHUTDOWN_DELAY_SECONDS while load balancers notice, stop
 * accepting, finish what is in flight and exit 0; at SHUTDOWN_TIMEOUT_SECONDS whatever is still
 * unfinished has its connection closed. WEB_CONCURRENCY > 1 runs that many such processes as
 * node:cluster workers under a primary that loads no model; a worker loads its model before it
 * listens, so that no connection ever reaches a worker that cannot answer it. The signals are
 * taken from the entry point's first line (server.ts, shutdown-signals.ts).
 */

/** How long a connection accepted just before the listener closed has to send its request. */
const IDLE_CONNECTION_GRACE_MS = 500;

/**
 * After the shutdown delay, the listener stays open until no connection has arrived for this long:
 * closing it resets the connections the kernel has accepted but the server has not (their requests
 * would be lost), so it is closed once clients have gone elsewhere, not at a fixed moment.
 */
const QUIET_BEFORE_CLOSE_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SERVER = { name: 'anomaly-serve', version: packageVersion() };

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The message a worker sends the primary once its model is loaded. */
const WORKER_READY = { type: 'anomaly-serve:ready' } as const;

export interface RunningServer {
  readonly url: string;
  /** Where GET /metrics is served (METRICS_PORT). */
  readonly metricsUrl: string;
  readonly state: ServingState;
  /** Resolves once the model is loaded (rejects if it cannot be). */
  readonly loaded: Promise<LoadedModel>;
  /**
   * The drain of a SIGTERM: unready, wait, stop accepting, finish in-flight requests; at `deadline`
   * (ms since the epoch) the connections of requests still unfinished are closed.
   */
  drain(deadline?: number): Promise<void>;
}

/** Listens on `port` with the HTTP limits of the configuration. */
function listen(app: Hono, port: number, config: Config): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const listening = serve(
      {
        fetch: app.fetch,
        hostname: config.host,
        port,
        serverOptions: {
          headersTimeout: config.headersTimeoutSeconds * 1000,
          requestTimeout: config.requestTimeoutSeconds * 1000,
          keepAliveTimeout: config.keepAliveTimeoutSeconds * 1000,
          maxHeaderSize: HTTP_LIMITS.maxHeaderSizeBytes,
          // How often the two timeouts are checked (Node.js' default, 30 s, would let them run long).
          connectionsCheckingInterval: Math.min(1000, config.headersTimeoutSeconds * 1000),
        },
      },
      () => resolve(listening as Server),
    ) as Server;
    listening.maxHeadersCount = HTTP_LIMITS.maxHeadersCount;
    closeStalledWrites(listening, config.writeTimeoutSeconds * 1000);
    listening.once('error', reject);
  });
}

/**
 * Reads the model's metadata (its name, and an early, clear error when the folder is not a model),
 * listens, then loads the model; a cluster worker loads it first. Signal handling is the caller's
 * (see `runServer`).
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metadata = readMetadata(config.modelPath);
  const modelName = config.modelName ?? metadata.name;
  const calibration = metadata.calibration && new Calibration(metadata.calibration);
  const metrics = createMetrics({ scoreBuckets: scoreBuckets(config.threshold ?? metadata.threshold.value, calibration) });
  const drift = new DriftMonitor(config.driftWindowSize, config.driftWindowSeconds);
  const state: { model: LoadedModel | undefined; draining: boolean } = { model: undefined, draining: false };
  const metricsView = cluster.isWorker ? workerMetrics(metrics.registry, drift) : localMetrics(metrics.registry, drift);
  let apiKeys: ApiKeys | undefined;
  if (config.apiKeysFile !== undefined) {
    apiKeys = cluster.isWorker ? await keysFromPrimary() : ApiKeys.watch(config.apiKeysFile, logger, metrics);
    logger.info({ file: config.apiKeysFile, keys: apiKeys.count }, 'API keys required');
  } else {
    logger.warn(`no ${ENV.apiKeysFile}: the API answers anyone who reaches it`);
  }
  const app = createApp({
    state,
    modelName,
    maxBodyBytes: config.maxBodyBytes,
    compressionThresholdBytes: config.compressionThresholdBytes,
    maxBatchSize: config.maxBatchSize,
    versionLabels: config.versionLabels,
    metrics,
    logger,
    server: SERVER,
    metricsView,
    apiKeys,
  });

  const load = async () => {
    // Imported only now: it brings in TensorFlow.js, which the cluster primary must not load.
    const { loadModel } = await import('./model-loader.ts');
    const { model, backend: choice } = await loadModel(config, { metrics, drift }, logger);
    const { detector } = model;
    drift.reference = detector;
    const { backend } = choice;
    const notice = fallbackNotice(choice);
    if (notice) logger.warn({ backend, skipped: choice.skipped }, notice);
    metrics.modelInfo.set({ model: modelName, version: detector.version, backend }, 1);
    metrics.threshold.set(detector.threshold);
    // Served from here: a cluster worker does not listen yet, a single process does.
    state.model = model;
    return { model, backend };
  };
  /** Says the process is ready: it listens and serves the model. */
  const announceReady = ({ model, backend }: Awaited<ReturnType<typeof load>>) => {
    const { detector } = model;
    logger.info(
      {
        model: modelName,
        version: detector.version,
        backend,
        threshold: detector.threshold,
        thresholdRule: config.threshold === undefined ? detector.metadata.threshold.rule : ENV.threshold,
        maxBatchSize: config.maxBatchSize,
      },
      'model loaded (ready)',
    );
    return model;
  };
  // A cluster worker that listened while loading would be handed connections it can only refuse.
  const loadedFirst = cluster.isWorker ? await load() : undefined;

  const server = await listen(app, config.port, config);
  const metricsServer = await listen(createMetricsApp({ metricsView, metrics, logger }), config.metricsPort, config);
  const urlOf = (listening: Server) => `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${(listening.address() as AddressInfo).port}`;
  const url = urlOf(server);
  const metricsUrl = urlOf(metricsServer);
  logger.info({ host: config.host, port: (server.address() as AddressInfo).port, url, metricsUrl }, 'listening (live)');
  const loaded = loadedFirst === undefined ? load().then(announceReady) : Promise.resolve(announceReady(loadedFirst));
  let lastConnectionAt = 0;
  server.on('connection', () => (lastConnectionAt = Date.now()));

  const drain = async (deadline = Date.now() + config.shutdownTimeoutSeconds * 1000) => {
    state.draining = true;
    logger.info({ delaySeconds: config.shutdownDelaySeconds }, 'draining: not ready, still serving');
    await sleep(config.shutdownDelaySeconds * 1000);
    // Clients still connecting (a load balancer slower than the delay) are served, not reset, as
    // long as what they send can still finish by the deadline.
    const closeBy = deadline - config.requestTimeoutSeconds * 1000;
    while (Date.now() < closeBy && Date.now() - lastConnectionAt < QUIET_BEFORE_CLOSE_MS) {
      await sleep(Math.min(QUIET_BEFORE_CLOSE_MS - (Date.now() - lastConnectionAt), closeBy - Date.now()));
    }
    logger.info('draining: no longer accepting connections, finishing in-flight requests');
    // Stop listening and wait for every connection to end. Not http.Server.close(), which also
    // closes idle connections at once, among them any accepted a moment ago whose request has not
    // been read yet: that request would fail. Busy connections end after their response (it says
    // Connection: close while draining); idle keep-alive ones are closed after a grace period.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const grace = setTimeout(() => server.closeIdleConnections(), IDLE_CONNECTION_GRACE_MS);
    // A request still arriving at the deadline (a client trickling its body) has its connection
    // closed, so that the drain ends on time and the process exits 0 rather than being killed.
    const cut = setTimeout(() => {
      logger.warn('drain deadline: closing the connections whose requests are unfinished');
      server.closeAllConnections();
    }, Math.max(0, deadline - Date.now()));
    await closed;
    clearTimeout(grace);
    clearTimeout(cut);
    // The metrics last, so that a scrape during the drain still finds them.
    await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    metricsServer.closeAllConnections();
    apiKeys?.close();
    state.model?.detector.dispose();
  };
  return { url, metricsUrl, state, loaded, drain };
}

/** One serving process: a single-process server, or a cluster worker. */
async function runServer(config: Config, logger: Logger, signals: ShutdownSignals): Promise<void> {
  let running: RunningServer;
  try {
    running = await startServer(config, logger);
    // Listening: from here a signal drains (in a single process, while the model loads too).
    signals.serving({
      logger,
      repeat: cluster.isWorker ? 'ignore' : 'exit',
      timeoutSeconds: config.shutdownTimeoutSeconds,
      run: async (deadline) => {
        await running.drain(deadline);
        logger.info('stopped');
      },
    });
    await running.loaded;
  } catch (error) {
    logger.error({ err: error, modelPath: config.modelPath }, `cannot start: ${(error as Error).message}`);
    process.exit(1);
  }
  process.send?.(WORKER_READY);
}

/**
 * The cluster primary: forks the workers, replaces one that dies while serving, sums their
 * metrics, reads the API keys for them, and on a signal passes it on and waits for them to drain.
 * It loads no model.
 */
/** How a worker ends when a signal stopped it: drained (0), or killed before it took its handlers. */
const stoppedBySignal = (code: number | null, signal: string | null) => code === 0 || signal === 'SIGTERM' || signal === 'SIGINT';

function runPrimary(config: Config, logger: Logger, signals: ShutdownSignals): void {
  const own = new Registry();
  const keyMetrics = createApiKeyMetrics([own]);
  let apiKeys: ApiKeys | undefined;
  if (config.apiKeysFile !== undefined) {
    try {
      apiKeys = ApiKeys.watch(config.apiKeysFile, logger, keyMetrics);
    } catch (error) {
      logger.error({ err: error }, `cannot start: ${(error as Error).message}`);
      process.exit(1);
    }
  }
  const metrics = new ClusterMetrics(own);
  const workers = new Set<Worker>();
  let stopping = false;
  let failed = false;
  let allStopped: () => void = () => {};
  if (apiKeys) broadcastReloads(apiKeys, () => workers);
  /** Passes SIGTERM on to every worker; resolves once none is left. */
  const stopWorkers = async () => {
    stopping = true;
    const stopped = new Promise<void>((resolve) => (allStopped = resolve));
    for (const worker of workers) worker.process.kill('SIGTERM');
    if (workers.size > 0) await stopped;
    logger.info({ failed }, 'all workers stopped');
  };

  signals.serving({
    logger,
    repeat: 'exit',
    timeoutSeconds: config.shutdownTimeoutSeconds,
    run: async () => {
      await stopWorkers();
      if (failed) throw new Error('a worker did not drain cleanly');
    },
  });
  // A second signal makes the primary exit at once; the workers go with it.
  process.on('exit', () => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });

  const fork = () => {
    const worker = cluster.fork();
    workers.add(worker);
    metrics.track(worker);
    if (apiKeys) shareKeys(apiKeys, worker);
    let ready = false;
    // A message to a worker that has just died fails (EPIPE) before the primary hears of the death:
    // its reply to a worker's request to listen, a metrics request, new API keys. The 'exit' that
    // follows is what counts; unheard, the error would end the primary and every worker with it.
    worker.on('error', (error) => logger.warn({ pid: worker.process.pid, err: error }, 'a message to a worker failed'));
    worker.on('message', (message: typeof WORKER_READY) => {
      if (message?.type === WORKER_READY.type) ready = true;
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) {
        // A signal that ended a worker before its handlers were installed found it not yet
        // listening: nothing was lost. Any other way of ending is a failed drain.
        if (!stoppedBySignal(code, signal)) {
          logger.error({ pid: worker.process.pid, code, signal }, 'a worker did not drain cleanly');
          failed = true;
        }
        if (workers.size === 0) allStopped();
      } else if (!ready && !stoppedBySignal(code, signal)) {
        // It never served: the next one would fail the same way (a model that cannot load).
        logger.error({ pid: worker.process.pid, code }, 'a worker failed to start: stopping');
        failed = true;
        void stopWorkers().then(() => process.exit(1));
      } else {
        // Replacing a worker is the primary doing its job, not a failure of the shutdown to come.
        // A worker a signal stopped while it started (Ctrl-C reaches the whole group, and a worker
        // may take it before the primary does) is replaced too: the primary's own signal, when it
        // comes, stops the replacement.
        logger.warn({ pid: worker.process.pid, code, signal }, 'a worker exited: starting another');
        fork();
      }
    });
  };

  for (let i = 0; i < config.webConcurrency; i++) fork();
  logger.info({ workers: config.webConcurrency }, 'cluster primary started');
}

/** Runs the server the configuration describes: one process, or a cluster primary (or one of its workers). */
export async function main(signals: ShutdownSignals): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger('anomaly-serve').error(`invalid configuration: ${error.message}`);
    process.exit(2);
  }
  const logger = createLogger('anomaly-serve', { level: config.logLevel });
  signals.useLogger(logger);
  if (config.webConcurrency > 1 && cluster.isPrimary) runPrimary(config, logger, signals);
  else await runServer(config, logger, signals);
}
