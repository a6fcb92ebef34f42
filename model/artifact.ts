import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

/** The three files a model directory holds. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';

const classMetricsSchema = z.object({
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number().int(),
});

export const evaluationSchema = z.object({
  rows: z.number().int().positive(),
  accuracy: z.number(),
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
  name: z.string().min(1),
  /** A content hash of the model files, the normalisation and the threshold. */
  version: z.string().min(1),
  inputLength: z.number().int().positive(),
  normalisation: z
    .object({ method: z.literal('min-max'), min: z.number(), max: z.number() })
    .refine((n) => n.max > n.min, 'normalisation.max must be greater than normalisation.min'),
  threshold: z.object({
    value: z.number().nonnegative(),
    rule: z.string().min(1),
    description: z.string(),
  }),
  training: z.object({
    epochs: z.number().int().positive(),
    batchSize: z.number().int().positive(),
    learningRate: z.number().positive(),
    rows: z.number().int().positive(),
    finalLoss: z.number(),
    backend: z.string(),
  }),
  split: z.object({
    seed: z.number().int(),
    testFraction: z.number().gt(0).lt(1),
    stratifiedBy: z.literal('label'),
    dataSha256: z.string(),
    dataRows: z.number().int().positive(),
    trainRows: z.number().int().positive(),
    /** Zero-based indices of the test rows in the data file. */
    testRowIndices: z.array(z.number().int().nonnegative()),
  }),
  evaluation: evaluationSchema.optional(),
  /** One mean beat per class of the training part, in raw (unnormalised) units. */
  examples: z.array(
    z.object({
      name: z.string().min(1),
      label: z.number().int(),
      rows: z.number().int().positive(),
      beat: z.array(z.number()),
    }),
  ),
});
export type ModelMetadata = z.infer<typeof metadataSchema>;
export type Normalisation = ModelMetadata['normalisation'];

export class ModelFilesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFilesError';
  }
}

/** A model directory as loaded from disk. */
export interface ModelFiles {
  readonly artifacts: tf.io.ModelArtifacts;
  readonly metadata: ModelMetadata;
}

async function readOrFail(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelFilesError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : String(error)}`);
  }
}

function parseJson(file: string, text: Buffer): unknown {
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (error) {
    throw new ModelFilesError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

function toArrayBuffer(buffer: Buffer): ArrayBuffer {
  return new Uint8Array(buffer).buffer;
}

/**
 * Reads model.json, weights.bin and metadata.json from a directory. This is the IO handler the
 * runtime uses on every backend: tfjs-node's `file://` handler is not there without tfjs-node.
 */
export async function readModelFiles(dir: string): Promise<ModelFiles> {
  const modelFile = path.join(dir, MODEL_JSON);
  const metadataFile = path.join(dir, METADATA_JSON);
  const modelJson = parseJson(modelFile, await readOrFail(modelFile)) as tf.io.ModelJSON;
  if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new ModelFilesError(`${modelFile} is not a TensorFlow.js layers model (no modelTopology or weightsManifest)`);
  }
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const shards = await Promise.all(
      manifest.flatMap((group) => group.paths).map((shard) => readOrFail(path.join(dir, shard))),
    );
    return [manifest.flatMap((group) => group.weights), toArrayBuffer(Buffer.concat(shards))];
  });
  const parsed = metadataSchema.safeParse(parseJson(metadataFile, await readOrFail(metadataFile)));
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new ModelFilesError(`${metadataFile}: ${problem?.path.join('.') || '(root)'}: ${problem?.message}`);
  }
  const metadata = parsed.data;
  const version = contentVersion(artifacts, metadata);
  if (version !== metadata.version) {
    throw new ModelFilesError(
      `${metadataFile} records version ${metadata.version}, but the model files hash to ${version}: ` +
        'the files come from different training runs',
    );
  }
  return { artifacts, metadata };
}

function weightBytes(artifacts: tf.io.ModelArtifacts): Uint8Array {
  if (!artifacts.weightData) throw new ModelFilesError('the model has no weights');
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
}

/**
 * The model version: a hash of everything that decides a prediction (architecture, weights,
 * normalisation, threshold), so two models that score differently never share a version.
 */
export function contentVersion(
  artifacts: tf.io.ModelArtifacts,
  metadata: Pick<ModelMetadata, 'normalisation' | 'threshold'>,
): string {
  return createHash('sha256')
    .update(JSON.stringify(artifacts.modelTopology))
    .update(weightBytes(artifacts))
    .update(JSON.stringify([metadata.normalisation, metadata.threshold.value]))
    .digest('hex')
    .slice(0, 12);
}

/** Writes the three files into a directory (created when missing). */
export async function writeModelFiles(dir: string, files: ModelFiles): Promise<void> {
  const { artifacts, metadata } = files;
  await mkdir(dir, { recursive: true });
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
  };
  await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJson) + '\n');
  await writeFile(path.join(dir, WEIGHTS_BIN), weightBytes(artifacts));
  await writeMetadata(dir, metadata);
}

export async function writeMetadata(dir: string, metadata: ModelMetadata): Promise<void> {
  await writeFile(path.join(dir, METADATA_JSON), JSON.stringify(metadata, null, 2) + '\n');
}
