import { Hono, type Context } from 'hono';
import type { Detector, Score } from '../detector.ts';
import { describeValue, InvalidRequestError, NotFoundError } from '../errors.ts';
import { checkInstanceCount, INPUT_NAME, requireModel, scoreRows, type LoadedModel, type ServingState } from '../serving.ts';
import { readJsonObject } from './json-body.ts';

/**
 * TensorFlow Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest): model status,
 * metadata and :predict in the row ("instances") and columnar ("inputs") formats, plus POST
 * /predict, a short alias of the row format.
 */
export interface TfServingDeps {
  readonly state: ServingState;
  readonly modelName: string;
  readonly maxBatchSize: number;
}

const SIGNATURE = 'serving_default';

/** TensorFlow Serving versions are int64s; the content hash's first 48 bits make one. */
export const tfServingVersion = (detector: Detector) => String(parseInt(detector.version.slice(0, 12), 16));

/** An instance is a row of numbers, or an object naming the input ({"beat": [...]}). */
function rowOf(instance: unknown, where: string): unknown {
  if (typeof instance !== 'object' || instance === null || Array.isArray(instance)) return instance;
  if (!hasOnlyKey(instance, INPUT_NAME)) {
    throw new InvalidRequestError(`${where}: a named instance has one key, "${INPUT_NAME}"; got ${describeValue(instance)}`);
  }
  return instance[INPUT_NAME];
}

function hasOnlyKey(value: object, key: string): value is Record<string, unknown> {
  let count = 0;
  for (const own in value) if (own !== key || ++count > 1) return false;
  return count === 1;
}

/** The request's list of instances, checked for its count before anything is built per instance. */
function instanceList(value: unknown, where: string, maxBatchSize: number): unknown[] {
  if (!Array.isArray(value)) throw new InvalidRequestError(`"${where}" must be a list of heartbeats, got ${value === null ? 'null' : typeof value}`);
  if (value.length === 0) throw new InvalidRequestError(`"${where}" is empty; send at least one heartbeat`);
  checkInstanceCount(value.length, maxBatchSize);
  return value;
}

type Format = 'row' | 'columnar';

function parsePredictRequest(body: Record<string, unknown>, maxBatchSize: number): { format: Format; rows: unknown[]; field: string } {
  if (body.signature_name !== undefined && body.signature_name !== SIGNATURE) {
    throw new InvalidRequestError(`unknown signature_name: ${describeValue(body.signature_name)}; the model has "${SIGNATURE}"`);
  }
  const hasInstances = 'instances' in body;
  if (hasInstances === 'inputs' in body) {
    throw new InvalidRequestError('send either "instances" (row format) or "inputs" (columnar format), not both or neither');
  }
  if (hasInstances) {
    return {
      format: 'row',
      rows: instanceList(body.instances, 'instances', maxBatchSize).map((instance, i) => rowOf(instance, `instances[${i}]`)),
      field: 'instances',
    };
  }
  const inputs = body.inputs;
  if (typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs)) {
    if (!hasOnlyKey(inputs, INPUT_NAME)) throw new InvalidRequestError(`"inputs" names one input, "${INPUT_NAME}"; got ${describeValue(inputs)}`);
    const field = `inputs.${INPUT_NAME}`;
    return { format: 'columnar', rows: instanceList(inputs[INPUT_NAME], field, maxBatchSize), field };
  }
  return { format: 'columnar', rows: instanceList(inputs, 'inputs', maxBatchSize), field: 'inputs' };
}

function predictionsBody(format: Format, scores: Score[]) {
  if (format === 'columnar') {
    return {
      outputs: {
        reconstruction_error: scores.map((s) => s.reconstructionError),
        is_anomaly: scores.map((s) => s.isAnomaly),
      },
    };
  }
  return { predictions: scores.map((s) => ({ reconstruction_error: s.reconstructionError, is_anomaly: s.isAnomaly })) };
}

export function tfServingRoutes({ state, modelName, maxBatchSize }: TfServingDeps): Hono {
  const app = new Hono();
  const model = (name: string, version?: string) =>
    requireModel(state, modelName, name, version === undefined ? undefined : { requested: version, of: tfServingVersion });

  const predict = async (c: Context, loaded: LoadedModel, onlyRows = false) => {
    const request = parsePredictRequest(await readJsonObject(c, maxBatchSize), maxBatchSize);
    if (onlyRows && request.format !== 'row') throw new InvalidRequestError('POST /predict takes the row format: {"instances": [[...140 values], ...]}');
    const scores = await scoreRows(loaded, request.rows, (i) => `${request.field}[${i}]`);
    return c.json(predictionsBody(request.format, scores));
  };

  /** The part before ":predict"; the other verbs of TensorFlow Serving do not apply. */
  const beforePredict = (target: string): string => {
    const colon = target.lastIndexOf(':');
    if (colon < 0) throw new NotFoundError(`POST needs a verb: /v1/models/${target}:predict`);
    const verb = target.slice(colon + 1);
    if (verb !== 'predict') throw new InvalidRequestError(`":${verb}" is not supported: the model is an anomaly detector, use ":predict"`);
    return target.slice(0, colon);
  };

  const status = (detector: Detector) => ({
    model_version_status: [
      {
        version: tfServingVersion(detector),
        state: state.draining ? 'UNLOADING' : 'AVAILABLE',
        status: { error_code: 'OK', error_message: '' },
      },
    ],
  });

  const metadata = (detector: Detector) => {
    const dim = (size: number) => ({ size: String(size), name: '' });
    const tensor = (name: string, dtype: string, dims: number[]) => ({
      dtype,
      tensor_shape: { dim: dims.map(dim), unknown_rank: false },
      name,
    });
    return {
      model_spec: { name: modelName, signature_name: '', version: tfServingVersion(detector) },
      metadata: {
        signature_def: {
          signature_def: {
            [SIGNATURE]: {
              inputs: { [INPUT_NAME]: tensor(INPUT_NAME, 'DT_FLOAT', [-1, detector.inputLength]) },
              outputs: {
                reconstruction_error: tensor('reconstruction_error', 'DT_FLOAT', [-1]),
                is_anomaly: tensor('is_anomaly', 'DT_BOOL', [-1]),
              },
              method_name: 'tensorflow/serving/predict',
            },
          },
        },
      },
    };
  };

  app.get('/v1/models/:name', (c) => c.json(status(model(c.req.param('name')).detector)));
  app.get('/v1/models/:name/versions/:version', (c) => c.json(status(model(c.req.param('name'), c.req.param('version')).detector)));
  app.get('/v1/models/:name/metadata', (c) => c.json(metadata(model(c.req.param('name')).detector)));
  app.get('/v1/models/:name/versions/:version/metadata', (c) =>
    c.json(metadata(model(c.req.param('name'), c.req.param('version')).detector)),
  );
  app.post('/v1/models/:target', (c) => predict(c, model(beforePredict(c.req.param('target')))));
  app.post('/v1/models/:name/versions/:target', (c) => predict(c, model(c.req.param('name'), beforePredict(c.req.param('target')))));
  app.post('/predict', (c) => predict(c, model(modelName), true));
  return app;
}
