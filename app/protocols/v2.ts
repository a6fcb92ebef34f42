import { Hono, type Context } from 'hono';
import type { Detector, Score } from '../../model/detector.ts';
import { InvalidRequestError, NotReadyError } from '../errors.ts';
import { describeValue } from '../../model/instances.ts';
import { DEFAULT_OUTPUT_ROLES, inputOf, unavailableOutput, type Signature } from '../../model/artifact.ts';
import { checkInstanceCount } from '../batcher.ts';
import { PATHS } from '../contract.ts';
import { containersPerInstance, isReady, outputValues, requireModel, scoreOptionsFor, type LoadedModel, type ServingState } from '../serving.ts';
import { decodeFp32, encodeTensor, inferenceResponse, readInferenceRequest, type BinaryData, type BinaryDatatype, type FramingLimits } from './framing.ts';

/**
 * The Open Inference Protocol (KServe V2) over REST
 * (https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol): health,
 * server and model metadata, model readiness and inference, with Triton's binary tensor data
 * extension (framing.ts).
 */
export interface V2Deps extends FramingLimits {
  readonly state: ServingState;
  readonly modelName: string;
  readonly server: { readonly name: string; readonly version: string };
}

/** The extensions of the protocol that this server serves, as Triton names them. */
const EXTENSIONS = ['binary_tensor_data', 'statistics', 'model_configuration'];

const FP32_BYTES = 4;

type OutputSpec = Signature['outputs'][number];

interface RequestedOutput {
  readonly output: OutputSpec;
  /** Whether to answer it as binary tensor data rather than JSON. */
  readonly binary: boolean;
}

interface InferInput {
  readonly rows: unknown[][];
  readonly outputs: readonly RequestedOutput[];
  readonly id: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A boolean parameter of the binary data extension, if given. */
function flag(parameters: unknown, name: string, where: string): boolean | undefined {
  if (parameters === undefined) return undefined;
  if (!isRecord(parameters)) throw new InvalidRequestError(`${where}.parameters must be an object, got ${describeValue(parameters)}`);
  const value = parameters[name];
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidRequestError(`${where}.parameters.${name} must be true or false, got ${describeValue(value)}`);
  return value;
}

/**
 * The outputs asked for, each as JSON or binary: an output's `binary_data` parameter, else the
 * request's `binary_data_output`, else JSON.
 */
function parseOutputs(value: unknown, binaryByDefault: boolean, signature: Signature): readonly RequestedOutput[] {
  if (value === undefined) {
    return signature.outputs.filter(({ role }) => DEFAULT_OUTPUT_ROLES.includes(role)).map((output) => ({ output, binary: binaryByDefault }));
  }
  if (!Array.isArray(value) || value.length === 0) throw new InvalidRequestError('"outputs" must be a non-empty list of {"name": ...}');
  // Each output once: the answer's size then follows from MAX_BATCH_SIZE and the signature.
  const named = new Set<string>();
  return value.map((requested, i) => {
    const name = isRecord(requested) ? requested.name : undefined;
    const output = signature.outputs.find((o) => o.name === name);
    if (!output) {
      const why = typeof name === 'string' ? unavailableOutput(signature, name) : undefined;
      throw new InvalidRequestError(`outputs[${i}].name is ${describeValue(name)}, not an output${why ? ` of this model: ${why}` : ''}; the model has ${signature.outputs.map((o) => o.name).join(', ')}`);
    }
    if (named.has(output.name)) throw new InvalidRequestError(`outputs[${i}] names "${output.name}" again; ask for each output once`);
    named.add(output.name);
    return { output, binary: flag((requested as Record<string, unknown>).parameters, 'binary_data', `outputs[${i}]`) ?? binaryByDefault };
  });
}

/**
 * The rows of an input's data, sent flat in row-major order or nested as its shape ([rows, width],
 * or [rows, steps, features] for a window model, whose windows the batcher flattens), as the
 * protocol allows. Nothing deeper is walked here.
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

/** The values of an input sent as binary tensor data (its `binary_data_size` parameter). */
function binaryValues(input: Record<string, unknown>, binary: BinaryData | undefined, rows: number, width: number, shape: string): unknown[] {
  const size = (input.parameters as Record<string, unknown>).binary_data_size;
  if (!Number.isInteger(size) || (size as number) < 0) {
    throw new InvalidRequestError(`inputs[0].parameters.binary_data_size must be a number of bytes, got ${describeValue(size)}`);
  }
  if (!binary) {
    throw new InvalidRequestError('inputs[0].parameters.binary_data_size is set, but the request has no Inference-Header-Content-Length header to say where its JSON ends');
  }
  if (input.data !== undefined) throw new InvalidRequestError('inputs[0] has both "data" and parameters.binary_data_size; send one');
  const needed = rows * width * FP32_BYTES;
  if (size !== needed) {
    throw new InvalidRequestError(`inputs[0].parameters.binary_data_size is ${size} bytes; shape ${shape} of FP32 is ${needed} bytes (${FP32_BYTES} a value)`);
  }
  const values = decodeFp32(binary.take(needed, 'inputs[0]'));
  binary.finish();
  return values;
}

/** Reads an inference request: the signature's one FP32 input of shape [N, ...its dimensions], as JSON (flat or nested) or binary data. */
function parseInferRequest(body: Record<string, unknown>, binary: BinaryData | undefined, signature: Signature, maxBatchSize: number): InferInput {
  if (body.id !== undefined && typeof body.id !== 'string') throw new InvalidRequestError('"id" must be a string');
  const { name: inputName, width: inputLength, dims } = inputOf(signature);
  const { inputs } = body;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw new InvalidRequestError(`"inputs" must be a list of one input tensor, "${inputName}"`);
  }
  const input: unknown = inputs[0];
  if (!isRecord(input)) throw new InvalidRequestError('inputs[0] must be an object with name, shape, datatype and data');
  if (input.name !== inputName) {
    throw new InvalidRequestError(`inputs[0].name is ${describeValue(input.name)}, not an input; the model's input is "${inputName}"`);
  }
  if (input.datatype !== 'FP32') {
    throw new InvalidRequestError(`inputs[0].datatype is ${describeValue(input.datatype)}, which does not match the model's input; it takes FP32`);
  }
  const { shape } = input;
  if (!Array.isArray(shape) || shape.length !== 1 + dims.length || !Number.isInteger(shape[0]) || (shape[0] as number) < 1 || dims.some((size, i) => shape[i + 1] !== size)) {
    throw new InvalidRequestError(`inputs[0].shape is ${describeValue(shape)}, which does not match the model's input; it takes [N, ${dims.join(', ')}] with N >= 1`);
  }
  const rows = shape[0] as number;
  checkInstanceCount(rows, maxBatchSize);
  const binaryOutput = flag(body.parameters, 'binary_data_output', 'request') ?? false;
  const outputs = parseOutputs(body.outputs, binaryOutput, signature);
  const shapeText = describeValue(shape);
  if (isRecord(input.parameters) && input.parameters.binary_data_size !== undefined) {
    // Binary data is flat, row-major: split into rows as flat JSON data is.
    return { rows: rowsOf(binaryValues(input, binary, rows, inputLength, shapeText), rows, inputLength, shapeText), outputs, id: body.id };
  }
  binary?.finish();
  if (!Array.isArray(input.data)) throw new InvalidRequestError('inputs[0].data must be a list of numbers, flat or nested');
  return { rows: rowsOf(input.data, rows, inputLength, shapeText), outputs, id: body.id };
}

/** An output's tensor for a request's scores: the signature's shape with the rows filled in. */
function outputTensor({ name, role, datatype, shape }: OutputSpec, scores: Score[]): { name: string; datatype: BinaryDatatype; shape: number[]; data: (number | boolean)[] } {
  return { name, datatype, shape: [scores.length, ...shape.slice(1)], data: outputValues({ role, shape }, scores) };
}

/** The served model, if the path's `:name` (and `:version`, when there is one) names it. */
export function modelInPath(c: Context, state: ServingState, modelName: string): LoadedModel {
  const version = c.req.param('version');
  return requireModel(state, modelName, c.req.param('name')!, version === undefined ? undefined : { requested: version, of: (d) => d.version });
}

/** The POST routes that run an inference, as the request metrics label them. */
export const V2_INFER_ROUTES = ['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'] as const;

export function v2Routes({ state, modelName, maxBatchSize, maxBodyBytes, server }: V2Deps): Hono {
  const app = new Hono();
  const model = (c: Context) => modelInPath(c, state, modelName);

  const metadata = (detector: Detector) => ({
    name: modelName,
    versions: [detector.version],
    platform: 'tensorflowjs',
    inputs: detector.signature.inputs,
    outputs: detector.signature.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
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
    loaded.batcher.admit();
    const { json, binary } = await readInferenceRequest(c, { maxBatchSize, maxBodyBytes, containersPerInstance: containersPerInstance(detector) }, { binary: true });
    // Taken apart: what waits for the pass keeps only what it reads after, not the request's rows.
    const { rows, outputs: asked, id } = parseInferRequest(json, binary, detector.signature, maxBatchSize);
    const roles = asked.map(({ output }) => output.role);
    const scores = await loaded.batcher.score(rows, scoreOptionsFor(roles), (row) => `inputs[0].data, row ${row}`);
    const data: Uint8Array[] = [];
    const outputs = asked.map(({ output, binary: asBinary }) => {
      const tensor = outputTensor(output, scores);
      if (!asBinary) return tensor;
      const bytes = encodeTensor(tensor.datatype, tensor.data);
      data.push(bytes);
      return { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, parameters: { binary_data_size: bytes.length } };
    });
    const header = { model_name: modelName, model_version: detector.version, ...(id === undefined ? {} : { id }), outputs };
    return inferenceResponse(c, header, data);
  };

  app.get('/v2', (c) => c.json({ name: server.name, version: server.version, extensions: EXTENSIONS }));
  app.get(PATHS.live, (c) => c.json({ live: true }));
  app.get(PATHS.ready, (c) => {
    if (!isReady(state)) throw new NotReadyError(state.draining ? 'not ready: the server is shutting down' : 'not ready: the model is loading');
    return c.json({ ready: true });
  });
  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(base, (c) => c.json(metadata(model(c).detector)));
    app.get(`${base}/ready`, modelReady);
  }
  for (const route of V2_INFER_ROUTES) app.post(route, infer);
  return app;
}
