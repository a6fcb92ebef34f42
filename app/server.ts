import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { AggregatorRegistry } from 'prom-client';
import { createApp } from './app.ts';
import { selectBackend } from './backend.ts';
import { Batcher } from './batcher.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { ENV } from './contract.ts';
import { Detector } from './detector.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import type { LoadedModel, ServingState } from './serving.ts';

/**
 * The process lifecycle, in one place: listen (live), load the model (ready), and on SIGTERM turn
 * unready, keep serving for SHUTDOWN_DELAY_SECONDS while load balancers notice, stop accepting,
 * finish what is in flight and exit 0. A second signal, or SHUTDOWN_TIMEOUT_SECONDS after the
 * first, forces exit 1. WEB_CONCURRENCY > 1 runs that many such processes as node:cluster workers.
 */

/** How long a connection accepted just before the listener closed has to send its request. */
const IDLE_CONNECTION_GRACE_MS = 500;

const SERVER = { name: 'anomaly-serve', version: packageVersion() };

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Messages between the cluster primary and its workers. */
type WorkerMessage = { type: 'anomaly-serve:ready' } | { type: 'anomaly-serve:metrics'; id: number };
type PrimaryMessage = { type: 'anomaly-serve:metrics'; id: number; text: string };

export interface RunningServer {
  readonly url: string;
  readonly state: ServingState;
  /** Resolves once the model is loaded (rejects if it cannot be). */
  readonly loaded: Promise<LoadedModel>;
  /** The drain of a SIGTERM: unready, wait, stop accepting, finish in-flight requests. */
  drain(): Promise<void>;
}

/** Listens, then loads the model. Signal handling is the caller's (see `main`). */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  const state: { model: LoadedModel | undefined; draining: boolean } = { model: undefined, draining: false };
  const metricsText = cluster.isWorker ? askPrimaryForMetrics : () => metrics.registry.metrics();
  if (cluster.isWorker) {
    // Constructing an AggregatorRegistry is what makes a worker answer the primary's requests.
    AggregatorRegistry.setRegistries([metrics.registry]);
    new AggregatorRegistry();
  }
  const app = createApp({ state, modelName: config.modelName, maxBodyBytes: config.maxBodyBytes, maxBatchSize: config.maxBatchSize, metrics, logger, server: SERVER, metricsText });

  const server = await new Promise<Server>((resolve, reject) => {
    const listening = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => resolve(listening as Server));
    listening.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  logger.info({ host: config.host, port, url }, 'listening (live)');

  const loaded = (async () => {
    const backend = await selectBackend(config.backend);
    const detector = await Detector.load(config.modelPath, { threshold: config.threshold });
    const model = { detector, batcher: new Batcher(detector, { maxBatchSize: config.maxBatchSize, metrics }) };
    metrics.modelInfo.set({ model: config.modelName, version: detector.version, backend }, 1);
    metrics.threshold.set(detector.threshold);
    state.model = model;
    logger.info(
      { model: config.modelName, version: detector.version, backend, threshold: detector.threshold, thresholdRule: config.threshold === undefined ? detector.metadata.threshold.rule : ENV.threshold, maxBatchSize: config.maxBatchSize },
      'model loaded (ready)',
    );
    return model;
  })();

  const drain = async () => {
    state.draining = true;
    logger.info({ delaySeconds: config.shutdownDelaySeconds }, 'draining: not ready, still serving');
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDelaySeconds * 1000));
    logger.info('draining: no longer accepting connections, finishing in-flight requests');
    // Stop listening and wait for every connection to end. Not http.Server.close(), which also
    // closes idle connections at once, among them any accepted a moment ago whose request has not
    // been read yet: that request would fail. Busy connections end after their response (it says
    // Connection: close while draining); idle keep-alive ones are closed after a grace period.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    const grace = setTimeout(() => server.closeIdleConnections(), IDLE_CONNECTION_GRACE_MS);
    await closed;
    clearTimeout(grace);
    state.model?.detector.dispose();
  };
  return { url, state, loaded, drain };
}

let nextMetricsRequest = 0;
const pendingMetrics = new Map<number, (text: string) => void>();

function askPrimaryForMetrics(): Promise<string> {
  const id = nextMetricsRequest++;
  return new Promise((resolve) => {
    pendingMetrics.set(id, resolve);
    process.send!({ type: 'anomaly-serve:metrics', id } satisfies WorkerMessage);
  });
}

/** One serving process: a single-process server, or a cluster worker. */
async function runServer(config: Config, logger: Logger): Promise<void> {
  let running: RunningServer;
  try {
    running = await startServer(config, logger);
    await running.loaded;
  } catch (error) {
    logger.error({ err: error, modelPath: config.modelPath }, `cannot start: ${(error as Error).message}`);
    process.exit(1);
  }
  process.on('message', (message: PrimaryMessage) => {
    if (message?.type !== 'anomaly-serve:metrics') return;
    pendingMetrics.get(message.id)?.(message.text);
    pendingMetrics.delete(message.id);
  });
  process.send?.({ type: 'anomaly-serve:ready' } satisfies WorkerMessage);

  onShutdownSignals(config, logger, async () => {
    await running.drain();
    logger.info('stopped');
    process.exit(0);
  });
}

/**
 * The first SIGTERM or SIGINT starts `shutdown`; a second one, or the deadline, forces exit 1.
 */
function onShutdownSignals(config: Config, logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutdown deadline passed: exiting now');
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000).unref();
    shutdown().catch((error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * The cluster primary: forks the workers, replaces one that dies while serving, answers their
 * requests for the aggregated metrics, and on a signal passes it on and waits for them to drain.
 */
function runPrimary(config: Config, logger: Logger): void {
  const aggregator = new AggregatorRegistry();
  const workers = new Set<Worker>();
  let stopping = false;
  let failed = false;

  const fork = () => {
    const worker = cluster.fork();
    workers.add(worker);
    let ready = false;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'anomaly-serve:ready') ready = true;
      if (message.type === 'anomaly-serve:metrics') {
        aggregator.clusterMetrics().then(
          (text) => worker.send({ type: 'anomaly-serve:metrics', id: message.id, text } satisfies PrimaryMessage),
          (error: unknown) => worker.send({ type: 'anomaly-serve:metrics', id: message.id, text: `# metrics unavailable: ${String(error)}\n` }),
        );
      }
    });
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      failed ||= code !== 0;
      if (stopping) {
        if (workers.size === 0) {
          logger.info({ failed }, 'all workers stopped');
          process.exit(failed ? 1 : 0);
        }
      } else if (!ready) {
        // It never served: the next one would fail the same way (a model that cannot load).
        logger.error({ pid: worker.process.pid, code }, 'a worker failed to start: stopping');
        stopping = true;
        for (const other of workers) other.process.kill('SIGTERM');
        if (workers.size === 0) process.exit(1);
      } else {
        logger.warn({ pid: worker.process.pid, code, signal }, 'a worker died: starting another');
        fork();
      }
    });
  };

  for (let i = 0; i < config.webConcurrency; i++) fork();
  logger.info({ workers: config.webConcurrency }, 'cluster primary started');
  onShutdownSignals(config, logger, async () => {
    stopping = true;
    for (const worker of workers) worker.process.kill('SIGTERM');
  });
  // A second signal reaches the primary's handler, which exits; pass it on so workers exit too.
  process.on('exit', () => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger('anomaly-serve').error(`invalid configuration: ${error.message}`);
    process.exit(2);
  }
  const logger = createLogger('anomaly-serve', { level: config.logLevel });
  if (config.webConcurrency > 1 && cluster.isPrimary) runPrimary(config, logger);
  else await runServer(config, logger);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
