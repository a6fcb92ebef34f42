import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { summedMetrics, type MetricsSnapshot, type MetricsView } from './metrics.ts';
import { mergeWindows, type DriftMonitor, type RecentScores } from './drift.ts';

/**
 * The metrics of a node:cluster server, summed over its workers, both sides of the exchange. A
 * worker answers GET /metrics by asking the primary, which asks every worker for its metrics and
 * sums them. It also keeps what each worker that has exited had counted, so that the summed
 * counters never go down when a worker is replaced (Prometheus would read that as a reset), and
 * adds the primary's own metrics.
 */

type Snapshot = MetricsSnapshot;
type Metric = Snapshot[number];

type WorkerMessage =
  | { type: 'anomaly-serve:metrics-sum-request'; id: number }
  | { type: 'anomaly-serve:metrics-snapshot'; id: number; snapshot: Snapshot; window: RecentScores };
type PrimaryMessage =
  | { type: 'anomaly-serve:metrics-sum'; id: number; snapshot: Snapshot; windows: RecentScores[] }
  | { type: 'anomaly-serve:metrics-snapshot-request'; id: number };

/** How long the primary waits for a worker's metrics before it uses the worker's last ones. */
const SNAPSHOT_TIMEOUT_MS = 2_000;

/**
 * Metrics that only grow, and so must outlive the worker that counted them. (prom-client's types
 * say `type` is a numeric enum; at run time it is the Prometheus type's name.)
 */
const CUMULATIVE_TYPES: readonly unknown[] = ['counter', 'histogram'];
const isCumulative = (metric: Metric) => CUMULATIVE_TYPES.includes(metric.type);

const valueKey = (value: Metric['values'][number]) =>
  `${(value as { metricName?: string }).metricName ?? ''}|${JSON.stringify(Object.entries(value.labels).sort(([a], [b]) => a.localeCompare(b)))}`;

/** `total` plus the counters and histograms of `snapshot`, summed value by value. */
function addCumulative(total: Snapshot, snapshot: Snapshot): Snapshot {
  const byName = new Map(total.map((metric) => [metric.name, { ...metric, values: metric.values.map((value) => ({ ...value })) }]));
  for (const metric of snapshot.filter(isCumulative)) {
    const kept = byName.get(metric.name) ?? { ...metric, values: [] };
    byName.set(metric.name, kept);
    const values = new Map(kept.values.map((value) => [valueKey(value), value]));
    for (const value of metric.values) {
      const existing = values.get(valueKey(value));
      if (existing) existing.value += value.value;
      else kept.values.push({ ...value });
    }
  }
  return [...byName.values()];
}

/** In the cluster primary: collects, sums and serves the workers' metrics. */
export class ClusterMetrics {
  private readonly workers = new Set<Worker>();
  /** Each live worker's latest metrics and drift window, and the request they answered. */
  private readonly latest = new Map<Worker, { readonly id: number; readonly snapshot: Snapshot; readonly window: RecentScores }>();
  /** The counters and histograms of every worker that has exited, summed. */
  private retired: Snapshot = [];
  private readonly waiting = new Map<number, { readonly workers: Set<Worker>; readonly done: () => void }>();
  private nextId = 0;

  /** @param own the primary's own metrics (the API keys', which it reads for the workers), summed in too */
  constructor(private readonly own: Registry) {}

  /** Starts answering a worker's requests for the summed metrics, and collecting its own. */
  track(worker: Worker): void {
    this.workers.add(worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === 'anomaly-serve:metrics-sum-request') {
        void this.sum().then(
          ({ snapshot, windows }) => worker.isConnected() && worker.send({ type: 'anomaly-serve:metrics-sum', id: message.id, snapshot, windows } satisfies PrimaryMessage),
        );
      } else if (message?.type === 'anomaly-serve:metrics-snapshot') {
        // An answer to an older request that arrives late must not replace a newer one.
        if (message.id >= (this.latest.get(worker)?.id ?? -1)) this.latest.set(worker, { id: message.id, snapshot: message.snapshot, window: message.window });
        this.answered(message.id, worker);
      }
    });
    worker.on('exit', () => {
      const last = this.latest.get(worker);
      // In one synchronous step, so that no sum ever sees the worker in neither place.
      if (last) this.retired = addCumulative(this.retired, last.snapshot);
      this.latest.delete(worker);
      this.workers.delete(worker);
      for (const id of this.waiting.keys()) this.answered(id, worker);
    });
  }

  /**
   * The metrics of all workers, live and retired, summed, and the live workers' drift windows (which
   * a worker merges and tests: the primary loads no model to test them against).
   */
  async sum(): Promise<{ snapshot: Snapshot; windows: RecentScores[] }> {
    await this.refresh();
    const own = await this.own.getMetricsAsJSON();
    const latest = [...this.latest.values()];
    const snapshot = await AggregatorRegistry.aggregate([...latest.map(({ snapshot }) => snapshot), this.retired, own]).getMetricsAsJSON();
    return { snapshot, windows: latest.map(({ window }) => window) };
  }

  /** Asks every connected worker for its metrics; resolves once all answered, exited or timed out. */
  private refresh(): Promise<void> {
    const id = this.nextId++;
    const workers = new Set([...this.workers].filter((worker) => worker.isConnected()));
    if (workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timeout = setTimeout(() => this.finish(id), SNAPSHOT_TIMEOUT_MS);
      this.waiting.set(id, {
        workers,
        done: () => {
          clearTimeout(timeout);
          resolve();
        },
      });
      for (const worker of workers) worker.send({ type: 'anomaly-serve:metrics-snapshot-request', id } satisfies PrimaryMessage);
    });
  }

  private answered(id: number, worker: Worker): void {
    const request = this.waiting.get(id);
    if (!request) return;
    request.workers.delete(worker);
    if (request.workers.size === 0) this.finish(id);
  }

  private finish(id: number): void {
    this.waiting.get(id)?.done();
    this.waiting.delete(id);
  }
}

/**
 * In a worker: answers the primary's requests for this worker's metrics from `registry` and its
 * drift window from `drift`, and returns the view of the sum over all workers that the primary
 * makes, with the drift gauges of all workers' windows merged.
 */
export function workerMetrics(registry: Registry, drift: DriftMonitor): MetricsView {
  const pending = new Map<number, (sum: { snapshot: Snapshot; windows: RecentScores[] }) => void>();
  let nextId = 0;
  process.on('message', (message: PrimaryMessage) => {
    if (message?.type === 'anomaly-serve:metrics-snapshot-request') {
      void registry
        .getMetricsAsJSON()
        .then((snapshot) => process.send?.({ type: 'anomaly-serve:metrics-snapshot', id: message.id, snapshot, window: drift.recent() } satisfies WorkerMessage));
    } else if (message?.type === 'anomaly-serve:metrics-sum') {
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    }
  });
  return summedMetrics(async () => {
    const { snapshot, windows } = await new Promise<{ snapshot: Snapshot; windows: RecentScores[] }>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      process.send!({ type: 'anomaly-serve:metrics-sum-request', id } satisfies WorkerMessage);
    });
    return [...snapshot, ...(await drift.gauges(mergeWindows(windows, drift.size)))];
  });
}
