import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { InputError } from '../lib/cli.ts';
import { calibrationSchema } from './calibration.ts';
import { instanceWidth } from './instances.ts';

/**
 * The model artifact: a folder of three files that training writes and the server, the charts, the
 * page and the load test read. `model.json` and `weights.bin` are a TensorFlow.js layers model;
 * `metadata.json` says how to use it (this file's schema). Only what serving needs is required:
 * a model trained elsewhere is served as long as its metadata says that much.
 */

/** The three files an artifact folder holds. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';

/** A name in URLs and in requests: a model's, or a tensor's. The configuration and the commands check names with it too. */
export const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');


/**
 * What each output of an anomaly detector is: the reconstruction error (the score), whether it is
 * above the threshold (the verdict), the reconstruction itself, in normalised units, the score's
 * p-value against the calibration, and the attribution: each value's share of the score (its
 * absolute or squared error, whose mean the score is).
 */
export type OutputRole = 'score' | 'verdict' | 'reconstruction' | 'p_value' | 'attribution';
/** The outputs an answer holds when a request does not name any. */
export const DEFAULT_OUTPUT_ROLES: readonly OutputRole[] = ['score', 'verdict'];

const FP32 = z.literal('FP32');
const rows = z.literal(-1);

const size = z.number().int().positive();
/** An instance's shape after the batch: a row of `width` values, or a window of `steps` × `features`. */
const instanceShape = z.union([z.tuple([rows, size]), z.tuple([rows, size, size])]);

/** The outputs a signature may add to the first three, each at most once. */
const extraOutput = z.discriminatedUnion('role', [
  z.object({ name: nameSchema, role: z.literal('p_value'), datatype: FP32, shape: z.tuple([rows]) }),
  z.object({ name: nameSchema, role: z.literal('attribution'), datatype: FP32, shape: instanceShape }),
]);

/**
 * The model's interface, in the Open Inference Protocol's terms: one FP32 input of shape
 * [-1, width] (a row) or [-1, steps, features] (a window of a sequence), and its outputs with their
 * datatypes and shapes (which follow from their role): score, verdict and reconstruction always,
 * then attribution and (for a calibrated model) p_value; a window is scored as a whole.
 */
const signatureSchema = z
  .object({
    inputs: z.tuple([z.object({ name: nameSchema, datatype: FP32, shape: instanceShape })]),
    outputs: z
      .tuple([
        z.object({ name: nameSchema, role: z.literal('score'), datatype: FP32, shape: z.tuple([rows]) }),
        z.object({ name: nameSchema, role: z.literal('verdict'), datatype: z.literal('BOOL'), shape: z.tuple([rows]) }),
        z.object({ name: nameSchema, role: z.literal('reconstruction'), datatype: FP32, shape: instanceShape }),
      ])
      .rest(extraOutput),
  })
  .refine(
    (s) => s.outputs.every((o) => o.role === 'score' || o.role === 'verdict' || o.role === 'p_value' || JSON.stringify(o.shape) === JSON.stringify(s.inputs[0].shape)),
    'the reconstruction and the attribution have the shape of the input',
  )
  .refine((s) => new Set(s.outputs.map((o) => o.role)).size === s.outputs.length, 'each output role once')
  .refine((s) => new Set([s.inputs[0].name, ...s.outputs.map((o) => o.name)]).size === 1 + s.outputs.length, 'the input and the outputs have different names');
export type Signature = z.infer<typeof signatureSchema>;

/** An instance's dimensions: [width] for a row, [steps, features] for a window. */
export type InstanceDims = [number] | [number, number];

/**
 * A signature for instances of `dims` (a width, or steps and features), with a p_value output when
 * the model is `calibrated`; the outputs' names default to the ones the bundled model has.
 */
export function signatureFor(
  dims: number | InstanceDims,
  names: { readonly input: string; readonly score?: string; readonly verdict?: string; readonly reconstruction?: string },
  calibrated: boolean,
): Signature {
  const shape = [-1, ...(typeof dims === 'number' ? [dims] : dims)] as Signature['inputs'][0]['shape'];
  return {
    inputs: [{ name: names.input, datatype: 'FP32', shape }],
    outputs: [
      { name: names.score ?? 'reconstruction_error', role: 'score', datatype: 'FP32', shape: [-1] },
      { name: names.verdict ?? 'is_anomaly', role: 'verdict', datatype: 'BOOL', shape: [-1] },
      { name: names.reconstruction ?? 'reconstruction', role: 'reconstruction', datatype: 'FP32', shape },
      { name: 'attribution', role: 'attribution', datatype: 'FP32', shape },
      ...(calibrated ? [{ name: 'p_value', role: 'p_value' as const, datatype: 'FP32' as const, shape: [-1] as [-1] }] : []),
    ],
  };
}

/**
 * The input's name, its dimensions after the batch, `width` (the values of one instance, flat) and
 * `features` (the last dimension, which per-feature normalisation is over).
 */
export function inputOf(signature: Signature) {
  const [, ...dims] = signature.inputs[0].shape;
  return { name: signature.inputs[0].name, dims: dims as InstanceDims, width: instanceWidth(dims), features: dims.at(-1)! };
}

/**
 * Why a signature lacks an output of one of the roles added after the first three, when `name` is
 * that role's name (a model written before the role existed, or one without a calibration).
 */
export function unavailableOutput(signature: Signature, name: string): string | undefined {
  if (signature.outputs.some((o) => o.role === name)) return undefined;
  if (name === 'p_value') return 'p-values need a calibration, which its metadata.json does not record (train it, or import it with --data, to record one)';
  if (name === 'attribution') return 'its metadata.json is from before attributions (train or import it again to add one)';
  return undefined;
}

const classMetricsSchema = z.object({
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number().int(),
});

/**
 * How raw input values are scaled before the model sees them: not at all, by one global min-max
 * range (what `npm run train` fits), or by each feature's mean and standard deviation (what
 * scikit-learn's StandardScaler does). Reconstruction errors are measured in the scaled units.
 */
export const normalisationSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('none') }),
  z
    .object({ method: z.literal('min-max'), min: z.number(), max: z.number() })
    .refine((n) => n.max > n.min, 'normalisation.max must be greater than normalisation.min'),
  z
    .object({ method: z.literal('standard'), mean: z.array(z.number()), std: z.array(z.number().positive()) })
    .refine((n) => n.mean.length === n.std.length, 'normalisation.mean and normalisation.std must have one value per feature each'),
  // scikit-learn's MinMaxScaler: each feature by its own range; a constant one (max = min) by 1, as there.
  z
    .object({ method: z.literal('min-max-per-feature'), min: z.array(z.number()), max: z.array(z.number()) })
    .refine((n) => n.min.length === n.max.length, 'normalisation.min and normalisation.max must have one value per feature each')
    .refine((n) => n.max.every((max, i) => max >= n.min[i]!), 'normalisation.max must be at least normalisation.min, feature by feature'),
]);
export type Normalisation = z.infer<typeof normalisationSchema>;

/**
 * How a row's reconstruction is scored, over its (normalised) values: the mean absolute error, or
 * the mean squared error that most Keras autoencoders are trained and thresholded with.
 */
export const SCORE_FUNCTIONS = {
  mae: 'the mean absolute error between the normalised row and its reconstruction',
  mse: 'the mean squared error between the normalised row and its reconstruction',
} as const;
export type ScoreFunction = keyof typeof SCORE_FUNCTIONS;
export const isScoreFunction = (value: string): value is ScoreFunction => Object.hasOwn(SCORE_FUNCTIONS, value);
export const NORMALISATION_METHODS = ['none', 'min-max', 'standard', 'min-max-per-feature'] as const satisfies readonly Normalisation['method'][];

export const evaluationSchema = z.object({
  rows: z.number().int().positive(),
  accuracy: z.number(),
  /** The share of normal rows called anomalous (absent in evaluations from before it was recorded). */
  falsePositiveRate: z.number().optional(),
  rocAuc: z.number(),
  anomalous: classMetricsSchema,
  normal: classMetricsSchema,
  /** Counts with the anomalous class as the positive one. */
  confusionMatrix: z.object({
    truePositives: z.number().int(),
    falsePositives: z.number().int(),
    trueNegatives: z.number().int(),
    falseNegatives: z.number().int(),
  }),
});
export type Evaluation = z.infer<typeof evaluationSchema>;

export const metadataSchema = z.object({
  /** The model's name: the name in the URLs unless MODEL_NAME says otherwise. */
  name: nameSchema,
  /** A content hash of the model files, the normalisation and the threshold (see contentVersion). */
  version: z.string().regex(/^[0-9a-f]{12}$/, '12 hexadecimal digits: the content hash (see contentVersion)'),
  signature: signatureSchema,
  /** How raw input values are scaled before the model sees them (see normalisationSchema). */
  normalisation: normalisationSchema,
  /** How a row is scored (see SCORE_FUNCTIONS); the threshold is on that scale. @default 'mae' */
  score: z.enum(Object.keys(SCORE_FUNCTIONS) as [ScoreFunction, ...ScoreFunction[]]).optional(),
  threshold: z.object({
    /** A row whose reconstruction error is above this is an anomaly. */
    value: z.number().nonnegative(),
    rule: z.string().min(1).optional(),
    description: z.string().optional(),
    /** The false-positive rate the `target-fpr` rule was given (on the calibration's rows). */
    targetFpr: z.number().gt(0).lt(1).optional(),
  }),
  /** The scores of normal rows the model was not trained on (see model/calibration.ts); absent in models from before it. */
  calibration: calibrationSchema.optional(),
  // What only this project's training and evaluation write and read.
  training: z
    .object({
      epochs: z.number().int().positive(),
      batchSize: z.number().int().positive(),
      learningRate: z.number().positive(),
      seed: z.number().int().optional(),
      rows: z.number().int().positive(),
      finalLoss: z.number(),
      backend: z.string(),
    })
    .optional(),
  split: z
    .object({
      seed: z.number().int(),
      testFraction: z.number().gt(0).lt(1),
      /** The share of the training part's normal rows held out of training to calibrate (absent: none were). */
      calibrationFraction: z.number().gt(0).lt(1).optional(),
      stratifiedBy: z.literal('label'),
      /** Where the data file's label is (1-based, or the last column), and its normal value. @default ECG5000's: last, 1 */
      labelColumn: z.union([z.number().int().positive(), z.literal('last')]).optional(),
      normalLabel: z.number().optional(),
      dataSha256: z.string(),
      dataRows: z.number().int().positive(),
      trainRows: z.number().int().positive(),
      /** Zero-based indices of the test rows in the data file. */
      testRowIndices: z.array(z.number().int().nonnegative()),
    })
    .optional(),
  /** Where an imported model came from (`npm run import`): the Keras file, and the data used, if any. */
  imported: z
    .object({
      file: z.string(),
      format: z.enum(['keras', 'h5']),
      kerasVersion: z.string().optional(),
      sha256: z.string(),
      /** The CSV the normalisation, threshold, examples or evaluation were computed from. */
      data: z.object({ file: z.string(), sha256: z.string(), rows: z.number().int().positive() }).optional(),
    })
    .optional(),
  /** On the recorded test split (a model trained here), or on the imported model's data. */
  evaluation: evaluationSchema.optional(),
  /** Example rows in raw units, e.g. one mean row per class of the training data: for demos and load tests. */
  examples: z
    .array(
      z.object({
        name: z.string().min(1),
        label: z.number().int().optional(),
        rows: z.number().int().positive().optional(),
        values: z.array(z.number()),
      }),
    )
    .optional(),
});
export type ModelMetadata = z.infer<typeof metadataSchema>;

/** The model's score function: metadata.json's `score`, `mae` when it names none. */
export const scoreOf = (metadata: Pick<ModelMetadata, 'score'>): ScoreFunction => metadata.score ?? 'mae';

/** The model the repository and the image bundle, relative to the working directory (the repository's root). */
export const BUNDLED_MODEL_DIR = 'model/artifacts';

export class ArtifactError extends InputError {
  override name = 'ArtifactError';
}

/** An artifact folder as loaded from disk. */
export interface Artifact {
  readonly artifacts: tf.io.ModelArtifacts;
  readonly metadata: ModelMetadata;
}

function readOrFail(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ArtifactError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(error)}`);
  }
}

function parseJson(file: string, text: Buffer): unknown {
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (error) {
    throw new ArtifactError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Reads and checks metadata.json alone, without TensorFlow.js: the server reads it before it
 * listens (for the model's name), and `npm run synth` to name the model in the manifests.
 */
export function readMetadata(dir: string): ModelMetadata {
  const file = path.join(dir, METADATA_JSON);
  const parsed = metadataSchema.safeParse(parseJson(file, readOrFail(file)));
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new ArtifactError(`${file}: ${problem?.path.join('.') || '(root)'}: ${problem?.message}`);
  }
  const { width, features } = inputOf(parsed.data.signature);
  const { normalisation } = parsed.data;
  const perFeature = normalisation.method === 'standard' ? normalisation.mean : normalisation.method === 'min-max-per-feature' ? normalisation.min : undefined;
  if (perFeature && perFeature.length !== features) {
    throw new ArtifactError(`${file}: normalisation has ${perFeature.length} values a statistic; the input has ${features} features`);
  }
  if (!parsed.data.calibration && parsed.data.signature.outputs.some((o) => o.role === 'p_value')) {
    throw new ArtifactError(`${file}: the signature has a p_value output, but there is no calibration to compute it from`);
  }
  for (const example of parsed.data.examples ?? []) {
    if (example.values.length !== width) throw new ArtifactError(`${file}: example "${example.name}" has ${example.values.length} values; the input has ${width}`);
  }
  return parsed.data;
}

/**
 * Reads model.json, weights.bin and metadata.json from a folder, checking that the version is the
 * files' content hash. This is the IO handler the runtime uses on every backend: tfjs-node's
 * `file://` handler is not there without tfjs-node.
 */
export async function readArtifact(dir: string): Promise<Artifact> {
  const { io } = await import('@tensorflow/tfjs');
  const modelFile = path.join(dir, MODEL_JSON);
  const modelJson = parseJson(modelFile, readOrFail(modelFile)) as tf.io.ModelJSON;
  if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new ArtifactError(`${modelFile} is not a TensorFlow.js layers model (no modelTopology or weightsManifest)`);
  }
  const shardFiles = weightFiles(dir, modelFile, modelJson.weightsManifest);
  const artifacts = await io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const shards = shardFiles.map((file) => readOrFail(file));
    return [manifest.flatMap((group) => group.weights), new Uint8Array(Buffer.concat(shards)).buffer];
  });
  const metadata = readMetadata(dir);
  const version = await contentVersion(artifacts, metadata);
  if (version !== metadata.version) {
    throw new ArtifactError(
      `${path.join(dir, METADATA_JSON)} records version ${metadata.version}, but the model files hash to ${version}: ` +
        'the files come from different training runs (or metadata.json was written by hand: set version to the hash)',
    );
  }
  return { artifacts, metadata };
}

/** Bytes a value of each weight datatype takes, stored as it is or quantized. */
const BYTES_PER_VALUE: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/**
 * The weight files of a model.json, checked before any is opened: each path inside the folder
 * (a path such as ../../etc/hostname is refused, not read), and their sizes adding up to what the
 * manifest's weights take, so that a truncated or swapped file is named as such.
 */
function weightFiles(dir: string, modelFile: string, manifest: tf.io.WeightsManifestConfig): string[] {
  const root = path.resolve(dir);
  const files = manifest.flatMap((group) => group.paths).map((shard) => {
    const file = path.resolve(root, shard);
    const relative = path.relative(root, file);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new ArtifactError(`${modelFile}: the weights path ${JSON.stringify(shard)} is outside the model folder; paths are relative to it, inside it`);
    }
    return file;
  });
  let expected = 0;
  for (const { dtype, shape, quantization } of manifest.flatMap((group) => group.weights)) {
    const bytes = BYTES_PER_VALUE[quantization?.dtype ?? dtype];
    if (bytes === undefined) return files; // string weights have no fixed size
    expected += bytes * shape.reduce((product, size) => product * size, 1);
  }
  const actual = files.reduce((total, file) => {
    try {
      return total + statSync(file).size;
    } catch {
      return total + readOrFail(file).length; // readOrFail names the missing file
    }
  }, 0);
  if (actual !== expected) {
    throw new ArtifactError(
      `${modelFile}: the weight files (${files.map((file) => path.relative(root, file)).join(', ')}) hold ${actual} bytes; ` +
        `the weightsManifest describes ${expected} bytes: a file is truncated or belongs to another model`,
    );
  }
  return files;
}

async function weightBytes(artifacts: tf.io.ModelArtifacts): Promise<Uint8Array> {
  if (!artifacts.weightData) throw new ArtifactError('the model has no weights');
  const { io } = await import('@tensorflow/tfjs');
  return new Uint8Array(io.CompositeArrayBuffer.join(artifacts.weightData));
}

/**
 * The model version: a hash of everything that decides a prediction (architecture, weights,
 * normalisation, threshold, calibration), so two models that score differently never share a version.
 */
export async function contentVersion(artifacts: tf.io.ModelArtifacts, metadata: Pick<ModelMetadata, 'normalisation' | 'threshold' | 'score' | 'calibration'>): Promise<string> {
  // The score function and the calibration (which decides p-values) join the hash when they are
  // not what every earlier version implied, so that older models keep their versions.
  const score = [...(scoreOf(metadata) === 'mae' ? [] : [scoreOf(metadata)]), ...(metadata.calibration ? [metadata.calibration] : [])];
  return createHash('sha256')
    .update(JSON.stringify(artifacts.modelTopology))
    .update(await weightBytes(artifacts))
    .update(JSON.stringify([metadata.normalisation, metadata.threshold.value, ...score]))
    .digest('hex')
    .slice(0, 12);
}

/** A model's topology and weights, in memory, as `writeArtifact` writes them. */
export async function artifactsOf(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  const { io } = await import('@tensorflow/tfjs');
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return artifacts!;
}

/** Writes the three files into a folder (created when missing). */
export async function writeArtifact(dir: string, { artifacts, metadata }: Artifact): Promise<void> {
  await mkdir(dir, { recursive: true });
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
  };
  await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJson) + '\n');
  await writeFile(path.join(dir, WEIGHTS_BIN), await weightBytes(artifacts));
  await writeMetadata(dir, metadata);
}

export async function writeMetadata(dir: string, metadata: ModelMetadata): Promise<void> {
  await writeFile(path.join(dir, METADATA_JSON), JSON.stringify(metadata, null, 2) + '\n');
}
