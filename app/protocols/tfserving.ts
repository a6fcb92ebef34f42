import { Hono, type Context } from 'hono';
import type { Detector, Score, ScoreOptions } from '../../model/detector.ts';
import { InvalidRequestError, NotFoundError } from '../errors.ts';
import { describeValue } from '../../model/instances.ts';
import { DEFAULT_OUTPUT_ROLES, inputOf, type OutputRole, type Signature } from '../../model/artifact.ts';
import { checkInstanceCount } from '../batcher.ts';
import { containersPerInstance, outputValue, requireModel, scoreOptionsFor, type LoadedModel, type ServingState } from '../serving.ts';
import { inferenceResponse, readInferenceRequest, type FramingLimits } from './framing.ts';

/**
 * TensorFlow Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest): model status,
 * metadata and :predict in the row ("instances") and columnar ("inputs") formats, by name, version
 * or version label, plus POST /predict, a short alias of the row format.
 */
export interface TfServingDeps extends FramingLimits {
  readonly state: ServingState;
  readonly modelName: string;
  /**
   * Version labels (MODEL_VERSION_LABELS): label → version. @default `stable` and `latest`, both
   * the served version
   */
  readonly versionLabels?: Readonly<Record<string, string>>;
}

/**
 * The signatures a request picks with `signature_name`, as a TensorFlow SavedModel offers several:
 * each names the outputs it answers (those of them the model has). serving_default, the default,
 * answers the score and the verdict; explain adds the attribution and the p-value.
 */
const SIGNATURES: Readonly<Record<string, readonly OutputRole[]>> = {
  serving_default: DEFAULT_OUTPUT_ROLES,
  explain: [...DEFAULT_OUTPUT_ROLES, 'attribution', 'p_value'],
};
const DEFAULT_SIGNATURE = 'serving_default';

/** An output of the model's signature that a TF Serving signature answers, with an instance's dimensions in it. */
type AnsweredOutput = Signature['outputs'][number] & { readonly dims: readonly number[] };

/**
 * What each TF Serving signature answers of the model's signature, what scoring it takes, and the
 * name of the input that a named instance names, worked out once a model rather than on every
 * request.
 */
const answers = new WeakMap<Signature, Readonly<Record<string, { readonly outputs: readonly AnsweredOutput[]; readonly options: ScoreOptions; readonly input: string }>>>();
function answerOf(signature: Signature, name: string) {
  let bySignature = answers.get(signature);
  if (!bySignature) {
    const input = inputOf(signature).name;
    bySignature = Object.fromEntries(
      Object.entries(SIGNATURES).map(([signatureName, roles]) => {
        const outputs = signature.outputs
          .filter(({ role }) => roles.includes(role))
          .map((output) => {
            const dims = output.shape.slice(1);
            return { ...output, dims };
          });
        return [signatureName, { outputs, options: scoreOptionsFor(outputs.map(({ role }) => role)), input }];
      }),
    );
    answers.set(signature, bySignature);
  }
  return bySignature[name]!;
}

/** The POST routes that run an inference, as the request metrics label them. */
export const TF_SERVING_PREDICT_ROUTES = ['/v1/models/:target', '/v1/models/:name/versions/:target', '/v1/models/:name/labels/:target', '/predict'] as const;

/** TensorFlow Serving versions are int64s; the content hash's first 48 bits make one. */
export const tfServingVersion = (detector: Detector) => String(parseInt(detector.version.slice(0, 12), 16));

/** The `index`th instance, a row of numbers or an object naming the input (e.g. {"beat": [...]}), as a row. */
function rowOf(instance: unknown, index: number, input: string): unknown {
  if (typeof instance !== 'object' || instance === null || Array.isArray(instance)) return instance;
  if (!hasOnlyKey(instance, input)) {
    throw new InvalidRequestError(`instances[${index}]: a named instance has one key, "${input}"; got ${describeValue(instance)}`);
  }
  return instance[input];
}

function hasOnlyKey(value: object, key: string): value is Record<string, unknown> {
  let count = 0;
  for (const own in value) if (own !== key || ++count > 1) return false;
  return count === 1;
}

/** The request's list of instances, checked for its count before anything is built per instance. */
function instanceList(value: unknown, where: string, maxBatchSize: number): unknown[] {
  if (!Array.isArray(value)) throw new InvalidRequestError(`"${where}" must be a list of instances, got ${value === null ? 'null' : typeof value}`);
  if (value.length === 0) throw new InvalidRequestError(`"${where}" is empty; send at least one instance`);
  checkInstanceCount(value.length, maxBatchSize);
  return value;
}

type Format = 'row' | 'columnar';

function parsePredictRequest(body: Record<string, unknown>, input: string, maxBatchSize: number): { format: Format; rows: unknown[]; field: string } {
  const hasInstances = 'instances' in body;
  if (hasInstances === 'inputs' in body) {
    throw new InvalidRequestError('send either "instances" (row format) or "inputs" (columnar format), not both or neither');
  }
  if (hasInstances) {
    return {
      format: 'row',
      rows: instanceList(body.instances, 'instances', maxBatchSize).map((instance, i) => rowOf(instance, i, input)),
      field: 'instances',
    };
  }
  const inputs = body.inputs;
  if (typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs)) {
    if (!hasOnlyKey(inputs, input)) throw new InvalidRequestError(`"inputs" names one input, "${input}"; got ${describeValue(inputs)}`);
    const field = `inputs.${input}`;
    return { format: 'columnar', rows: instanceList(inputs[input], field, maxBatchSize), field };
  }
  return { format: 'columnar', rows: instanceList(inputs, 'inputs', maxBatchSize), field: 'inputs' };
}

/** The request's signature_name: one of SIGNATURES. */
function signatureName(body: Record<string, unknown>): string {
  const name = body.signature_name ?? DEFAULT_SIGNATURE;
  if (typeof name !== 'string' || !Object.hasOwn(SIGNATURES, name)) {
    throw new InvalidRequestError(`unknown signature_name: ${describeValue(name)}; the model has ${Object.keys(SIGNATURES).map((n) => `"${n}"`).join(', ')}`);
  }
  return name;
}

/**
 * An output's value for one instance, as its shape after the batch nests it: a number or a
 * boolean, a row's values, or a window's as a list of steps.
 */
function instanceValue({ role, dims }: AnsweredOutput, score: Score): unknown {
  const value = outputValue(role, score);
  if (dims.length < 2) return value;
  const [steps, features] = dims as [number, number];
  return Array.from({ length: steps }, (_, step) => (value as number[]).slice(step * features, (step + 1) * features));
}

/**
 * The answer: the outputs of the request's signature for each instance, named as the model's
 * signature names them. An output of several values an instance (the attribution) is a list, of
 * steps for a window. Each instance's values are read from its score: building each output's
 * values for all of them first, then an instance's from those, took two and a half times as long.
 */
function predictionsBody(format: Format, scores: Score[], answered: readonly AnsweredOutput[]) {
  if (format === 'columnar') return { outputs: Object.fromEntries(answered.map((output) => [output.name, scores.map((score) => instanceValue(output, score))])) };
  return {
    predictions: scores.map((score) => {
      const prediction: Record<string, unknown> = {};
      for (const output of answered) prediction[output.name] = instanceValue(output, score);
      return prediction;
    }),
  };
}

export function tfServingRoutes({ state, modelName, maxBatchSize, maxBodyBytes, versionLabels }: TfServingDeps): Hono {
  const app = new Hono();
  const model = (name: string, version?: string) =>
    requireModel(state, modelName, name, version === undefined ? undefined : { requested: version, of: tfServingVersion });
  /** The served model, if `label` names its version. */
  const labelled = (name: string, label: string) => {
    const loaded = model(name);
    const served = tfServingVersion(loaded.detector);
    // A Map: a label such as "constructor" must not find what every object inherits.
    const labels = new Map(Object.entries(versionLabels ?? { stable: served, latest: served }));
    const version = labels.get(label);
    if (version === undefined) {
      throw new NotFoundError(`model "${modelName}" has no version label "${label}"; its labels are ${[...labels.keys()].map((l) => `"${l}"`).join(', ')}`);
    }
    if (version !== served) throw new NotFoundError(`label "${label}" names version ${version}, which is not served here; this server serves version ${served}`);
    return loaded;
  };

  const predict = async (c: Context, loaded: LoadedModel, onlyRows = false) => {
    loaded.batcher.admit();
    const { json } = await readInferenceRequest(c, { maxBatchSize, maxBodyBytes, containersPerInstance: containersPerInstance(loaded.detector) }, { binary: false });
    const { signature, inputLength } = loaded.detector;
    const { outputs, options, input } = answerOf(signature, signatureName(json));
    // Taken apart, and `rows` not named by the closure: what waits for the pass keeps only what it reads after.
    const { format, rows, field } = parsePredictRequest(json, input, maxBatchSize);
    if (onlyRows && format !== 'row') throw new InvalidRequestError(`POST /predict takes the row format: {"instances": [[...${inputLength} values], ...]}`);
    const scores = await loaded.batcher.score(rows, options, (i) => `${field}[${i}]`);
    return inferenceResponse(c, predictionsBody(format, scores, outputs));
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
          signature_def: Object.fromEntries(
            Object.keys(SIGNATURES).map((signature) => [
              signature,
              {
                inputs: Object.fromEntries(detector.signature.inputs.map(({ name, shape }) => [name, tensor(name, 'DT_FLOAT', shape)])),
                outputs: Object.fromEntries(
                  answerOf(detector.signature, signature).outputs.map(({ name, datatype, shape }) => [name, tensor(name, datatype === 'BOOL' ? 'DT_BOOL' : 'DT_FLOAT', shape)]),
                ),
                method_name: 'tensorflow/serving/predict',
              },
            ]),
          ),
        },
      },
    };
  };

  // The model, by name alone, with a version, or with a version label.
  const modelOf = (c: Context) => {
    const { name, version, label } = c.req.param() as { name: string; version?: string; label?: string };
    return label === undefined ? model(name, version) : labelled(name, label);
  };
  for (const base of ['/v1/models/:name', '/v1/models/:name/versions/:version', '/v1/models/:name/labels/:label']) {
    app.get(base, (c) => c.json(status(modelOf(c).detector)));
    app.get(`${base}/metadata`, (c) => c.json(metadata(modelOf(c).detector)));
  }
  const [unversioned, versioned, label, alias] = TF_SERVING_PREDICT_ROUTES;
  app.post(unversioned, (c) => predict(c, model(beforePredict(c.req.param('target')))));
  app.post(versioned, (c) => predict(c, model(c.req.param('name'), beforePredict(c.req.param('target')))));
  app.post(label, (c) => predict(c, labelled(c.req.param('name'), beforePredict(c.req.param('target')))));
  app.post(alias, (c) => predict(c, model(modelName), true));
  return app;
}
