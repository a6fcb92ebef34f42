import { Hono, type Context } from 'hono';
import type { Detector, Score } from '../detector.ts';
import { describeValue, InvalidRequestError, NotReadyError } from '../errors.ts';
import { checkInstanceCount, INPUT_NAME, isReady, OUTPUT_NAMES, requireModel, scoreRows, type OutputName, type ServingState } from '../serving.ts';
import { readJsonObject } from './json-body.ts';

/**
 * The Open Inference Protocol (KServe V2) over REST
 * (https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol): health,
 * server and model metadata, model readiness and inference.
 */
export interface V2Deps {
  readonly state: ServingState;
  readonly modelName: string;
  readonly maxBatchSize: number;
  readonly server: { readonly name: string; readonly version: string };
}

const DEFAULT_OUTPUTS: readonly OutputName[] = ['reconstruction_error', 'is_anomaly'];

interface InferInput {
  readonly rows: unknown[][];
  readonly outputs: readonly OutputName[];
  readonly id: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseOutputs(value: unknown): readonly OutputName[] {
  if (value === undefined) return DEFAULT_OUTPUTS;
  if (!Array.isArray(value) || value.length === 0) throw new InvalidRequestError('"outputs" must be a non-empty list of {"name": ...}');
  return value.map((output, i) => {
    const name = isRecord(output) ? output.name : undefined;
    if (!OUTPUT_NAMES.includes(name as OutputName)) {
      throw new InvalidRequestError(`outputs[${i}].name is ${describeValue(name)}, not an output; the model has ${OUTPUT_NAMES.join(', ')}`);
    }
    return name as OutputName;
  });
}

/**
 * The rows of an input's data, sent flat in row-major order or nested as its shape [rows, width],
 * as the protocol allows. Nothing deeper is walked: a value nested further is an error of its row.
 */
function rowsOf(data: unknown[], rows: number, width: number, shape: string): unknown[][] {
  if (Array.isArray(data[0])) {
    if (data.length !== rows) throw new InvalidRequestError(`inputs[0].data has ${data.length} rows; shape ${shape} needs ${rows}`);
    return data.map((row, r) => {
      if (!Array.isArray(row)) throw new InvalidRequestError(`inputs[0].data[${r}] is ${describeValue(row)}; nested data has a list of ${width} values a row`);
      return row;
    });
  }
  if (data.length !== rows * width) throw new InvalidRequestError(`inputs[0].data has ${data.length} values; shape ${shape} needs ${rows * width}`);
  return Array.from({ length: rows }, (_, r) => data.slice(r * width, (r + 1) * width));
}

/** Reads an inference request: one FP32 input of shape [N, inputLength], data flat or nested. */
function parseInferRequest(body: Record<string, unknown>, inputLength: number, maxBatchSize: number): InferInput {
  if (body.id !== undefined && typeof body.id !== 'string') throw new InvalidRequestError('"id" must be a string');
  const { inputs } = body;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw new InvalidRequestError(`"inputs" must be a list of one input tensor, "${INPUT_NAME}"`);
  }
  const input: unknown = inputs[0];
  if (!isRecord(input)) throw new InvalidRequestError('inputs[0] must be an object with name, shape, datatype and data');
  if (input.name !== INPUT_NAME) {
    throw new InvalidRequestError(`inputs[0].name is ${describeValue(input.name)}, not an input; the model's input is "${INPUT_NAME}"`);
  }
  if (input.datatype !== 'FP32') {
    throw new InvalidRequestError(`inputs[0].datatype is ${describeValue(input.datatype)}, which does not match the model's input; it takes FP32`);
  }
  const { shape } = input;
  if (
    !Array.isArray(shape) ||
    shape.length !== 2 ||
    !Number.isInteger(shape[0]) ||
    (shape[0] as number) < 1 ||
    shape[1] !== inputLength
  ) {
    throw new InvalidRequestError(`inputs[0].shape is ${describeValue(shape)}, which does not match the model's input; it takes [N, ${inputLength}] with N >= 1`);
  }
  const rows = shape[0] as number;
  checkInstanceCount(rows, maxBatchSize);
  if (!Array.isArray(input.data)) throw new InvalidRequestError('inputs[0].data must be a list of numbers, flat or nested');
  return {
    rows: rowsOf(input.data, rows, inputLength, describeValue(shape)),
    outputs: parseOutputs(body.outputs),
    id: body.id,
  };
}

function outputTensor(name: OutputName, scores: Score[], inputLength: number) {
  switch (name) {
    case 'reconstruction_error':
      return { name, datatype: 'FP32', shape: [scores.length], data: scores.map((s) => s.reconstructionError) };
    case 'is_anomaly':
      return { name, datatype: 'BOOL', shape: [scores.length], data: scores.map((s) => s.isAnomaly) };
    case 'reconstruction':
      return { name, datatype: 'FP32', shape: [scores.length, inputLength], data: scores.flatMap((s) => s.reconstruction!) };
  }
}

export function v2Routes({ state, modelName, maxBatchSize, server }: V2Deps): Hono {
  const app = new Hono();
  const model = (c: Context) => {
    const version = c.req.param('version');
    return requireModel(state, modelName, c.req.param('name')!, version === undefined ? undefined : { requested: version, of: (d) => d.version });
  };

  const metadata = (detector: Detector) => ({
    name: modelName,
    versions: [detector.version],
    platform: 'tensorflowjs',
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, detector.inputLength] }],
    outputs: [
      { name: 'reconstruction_error', datatype: 'FP32', shape: [-1] },
      { name: 'is_anomaly', datatype: 'BOOL', shape: [-1] },
      { name: 'reconstruction', datatype: 'FP32', shape: [-1, detector.inputLength] },
    ],
    parameters: { threshold: detector.threshold, backend: detector.backend },
  });

  const modelReady = (c: Context) => {
    model(c);
    if (state.draining) throw new NotReadyError(`model "${modelName}" is not ready: the server is shutting down`);
    return c.json({ name: modelName, ready: true });
  };

  const infer = async (c: Context) => {
    const loaded = model(c);
    const { detector } = loaded;
    const request = parseInferRequest(await readJsonObject(c, maxBatchSize), detector.inputLength, maxBatchSize);
    const scores = await scoreRows(loaded, request.rows, (row) => `inputs[0].data, row ${row}`, request.outputs.includes('reconstruction'));
    return c.json({
      model_name: modelName,
      model_version: detector.version,
      ...(request.id === undefined ? {} : { id: request.id }),
      outputs: request.outputs.map((name) => outputTensor(name, scores, detector.inputLength)),
    });
  };

  app.get('/v2', (c) => c.json({ name: server.name, version: server.version, extensions: [] }));
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    if (!isReady(state)) throw new NotReadyError(state.draining ? 'not ready: the server is shutting down' : 'not ready: the model is loading');
    return c.json({ ready: true });
  });
  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(base, (c) => c.json(metadata(model(c).detector)));
    app.get(`${base}/ready`, modelReady);
    app.post(`${base}/infer`, infer);
  }
  return app;
}
