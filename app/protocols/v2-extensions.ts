import { Hono, type Context } from 'hono';
import type { Detector } from '../../model/detector.ts';
import { UnsupportedOperationError } from '../errors.ts';
import { METRIC, type MetricsSnapshot, type MetricsView } from '../metrics.ts';
import type { ServingState } from '../serving.ts';
import { parseJsonObject } from './framing.ts';

/**
 * Triton's extensions to the Open Inference Protocol that its clients call besides inference:
 * statistics (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_statistics.md),
 * model configuration (extension_model_configuration.md) and the model repository's index
 * (extension_model_repository.md), which is read-only here: one model, loaded at start-up.
 */
export interface V2ExtensionDeps {
  readonly state: ServingState;
  readonly modelName: string;
  readonly maxBatchSize: number;
  readonly metricsView: MetricsView;
  /** The routes that run an inference, as the request metrics label them (both protocols'). */
  readonly inferenceRoutes: readonly string[];
  /** The served model, if the path names it (see v2.ts). */
  readonly modelInPath: (c: Context) => { readonly detector: Detector };
}

type MetricValue = MetricsSnapshot[number]['values'][number] & { metricName?: string };

/** Sums the values of a metric (or of one series of a histogram: `_sum`, `_count`) that pass `filter`. */
function total(snapshot: MetricsSnapshot, name: string, series = '', filter: (labels: MetricValue['labels']) => boolean = () => true): number {
  const metric = snapshot.find((m) => m.name === name);
  return (metric?.values ?? [])
    .filter((value: MetricValue) => (value.metricName ?? metric!.name) === name + series && filter(value.labels))
    .reduce((sum, value) => sum + value.value, 0);
}

const duration = (count: number, seconds: number) => ({ count, ns: Math.round(seconds * 1e9) });
const NOT_MEASURED = duration(0, 0);

/**
 * One model's statistics, from the figures the server's metrics already hold (summed over every
 * worker): requests by outcome with their time to answer, the time in the batching queue, and
 * the forward passes (normalisation and scoring included, so input and output preparation are
 * not reported apart). Per-batch-size figures are the `batch_size` histogram on /metrics.
 */
function modelStatistics(snapshot: MetricsSnapshot, modelName: string, version: string, inferenceRoutes: readonly string[]) {
  const inference = (ok: boolean) => (labels: MetricValue['labels']) =>
    labels.method === 'POST' && inferenceRoutes.includes(String(labels.route)) && String(labels.status).startsWith('2') === ok;
  const requests = (ok: boolean) =>
    duration(total(snapshot, METRIC.httpDuration, '_count', inference(ok)), total(snapshot, METRIC.httpDuration, '_sum', inference(ok)));
  const executions = total(snapshot, METRIC.forwardPass, '_count');
  return {
    name: modelName,
    version,
    last_inference: Math.round(total(snapshot, METRIC.lastInference) * 1000),
    inference_count: total(snapshot, METRIC.instancesScored),
    execution_count: executions,
    inference_stats: {
      success: requests(true),
      fail: requests(false),
      queue: duration(total(snapshot, METRIC.queueWait, '_count'), total(snapshot, METRIC.queueWait, '_sum')),
      compute_input: NOT_MEASURED,
      compute_infer: duration(executions, total(snapshot, METRIC.forwardPass, '_sum')),
      compute_output: NOT_MEASURED,
      cache_hit: NOT_MEASURED,
    },
    batch_stats: [],
  };
}

/**
 * Triton's model configuration, in protobuf's JSON mapping (int64 dimensions as strings). Its
 * dimensions leave out the batch's; a scalar a row is written as Triton does, [1] reshaped to [].
 */
function modelConfiguration(detector: Detector, modelName: string, maxBatchSize: number) {
  const tensor = ({ name, datatype, shape }: { name: string; datatype: string; shape: readonly number[] }) => {
    const dims = shape.slice(1);
    return { name, data_type: `TYPE_${datatype}`, ...(dims.length === 0 ? { dims: ['1'], reshape: { shape: [] } } : { dims: dims.map(String) }) };
  };
  return {
    name: modelName,
    platform: 'tensorflowjs',
    backend: detector.backend,
    max_batch_size: maxBatchSize,
    input: detector.signature.inputs.map(tensor),
    output: detector.signature.outputs.map(tensor),
    dynamic_batching: {},
    version_policy: { latest: { num_versions: 1 } },
    parameters: { threshold: { string_value: String(detector.threshold) } },
  };
}

export function v2ExtensionRoutes({ state, modelName, maxBatchSize, metricsView, inferenceRoutes, modelInPath }: V2ExtensionDeps): Hono {
  const app = new Hono();

  const statistics = async (detector: Detector | undefined) => ({
    model_stats: detector ? [modelStatistics(await metricsView.json(), modelName, detector.version, inferenceRoutes)] : [],
  });
  // Every model's statistics. Triton's path for them, /v2/models/stats, is where a model's name
  // goes, and a static route there would keep the app off Hono's RegExpRouter (see app.ts): this
  // route, before the model's metadata route, answers that name and passes any other on.
  app.get('/v2/models/:name', async (c, next) => (c.req.param('name') === 'stats' ? c.json(await statistics(state.model?.detector)) : next()));
  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(`${base}/stats`, async (c) => c.json(await statistics(modelInPath(c).detector)));
    app.get(`${base}/config`, (c) => c.json(modelConfiguration(modelInPath(c).detector, modelName, maxBatchSize)));
  }

  app.post('/v2/repository/index', async (c) => {
    // tritonclient posts an empty body; a JSON one may ask for ready models only.
    const body = await c.req.text();
    const { ready } = body.trim() === '' ? {} : parseJsonObject(body, { maxBatchSize });
    const detector = state.model?.detector;
    const entry = detector
      ? { name: modelName, version: detector.version, state: 'READY', reason: '' }
      : { name: modelName, state: 'LOADING', reason: 'the model is loading' };
    return c.json(ready === true && entry.state !== 'READY' ? [] : [entry]);
  });
  app.post('/v2/repository/models/:name/:action{load|unload}', (c) => {
    throw new UnsupportedOperationError(
      `${c.req.param('action')} is not supported: this server serves one model, "${modelName}", loaded at start-up from MODEL_PATH; ` +
        'to serve another, deploy the server with it',
    );
  });
  return app;
}
