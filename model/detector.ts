import * as tf from '@tensorflow/tfjs';
import { FP32_MAX, instanceWidth, InvalidInstanceError, shapeProblem, valueProblem } from './instances.ts';
import { Calibration } from './calibration.ts';
import { ArtifactError, inputOf, readArtifact, scoreOf, type InstanceDims, type ModelMetadata, type Normalisation, type ScoreFunction, type Signature } from './artifact.ts';

export interface Score {
  /**
   * The model's score of the row (metadata.json's `score`: the mean absolute or squared error
   * between the normalised input and its reconstruction). One that overflows
   * (inputs within FP32's range can still take the model's arithmetic past it) reads as FP32_MAX.
   */
  readonly reconstructionError: number;
  readonly isAnomaly: boolean;
  /** The reconstruction, in normalised units, when it was asked for; values past FP32's range read as ±FP32_MAX. */
  readonly reconstruction?: number[];
  /** Each value's term of the score (its absolute or squared error: the score is their mean), when it was asked for. */
  readonly attribution?: number[];
  /** The share of the calibration's normal rows that scored at least as high, when it was asked for. */
  readonly pValue?: number;
}

/**
 * A computed value as an FP32 output can carry it, in JSON too (which has no Infinity or NaN):
 * ±Infinity as ±FP32_MAX, and NaN, which only an overflow inside the model produces, as FP32_MAX.
 */
const finiteFp32 = (value: number) => (value >= -FP32_MAX ? (value <= FP32_MAX ? value : FP32_MAX) : Number.isNaN(value) ? FP32_MAX : -FP32_MAX);

/** What a score holds besides the score and the verdict, when asked for. */
export interface ScoreOptions {
  /** Each row's reconstruction. @default false */
  readonly reconstruction?: boolean;
  /** Each row's attribution. @default false */
  readonly attribution?: boolean;
  /** Each row's p-value (a model with a calibration only). @default false */
  readonly pValue?: boolean;
}

export interface DetectorOptions {
  /** Overrides the threshold recorded in metadata.json. @default the recorded threshold */
  readonly threshold?: number;
}

/** Each feature's range, as MinMaxScaler divides by it: a constant feature's (zero) as 1. */
const featureRanges = ({ min, max }: { readonly min: readonly number[]; readonly max: readonly number[] }) => max.map((value, i) => value - min[i]! || 1);

/**
 * What each value of an instance is scaled by: value → (value − offset[i]) / divisor[i], in
 * float64. A window's per-feature statistics are repeated for each of its steps, so that the loop
 * that scales every value served indexes them by the value's place alone: counting the feature
 * alongside cost the server 1,100 instructions a request (docs/benchmarks.md).
 */
function scalingOf(normalisation: Normalisation, dims: readonly number[]): { offset: Float64Array; divisor: Float64Array } {
  const width = instanceWidth(dims);
  const features = dims.at(-1)!;
  const each = (value: number) => new Float64Array(width).fill(value);
  const perFeature = (values: readonly number[]) => Float64Array.from({ length: width }, (_, i) => values[i % features]!);
  switch (normalisation.method) {
    case 'none':
      return { offset: each(0), divisor: each(1) };
    case 'min-max':
      return { offset: each(normalisation.min), divisor: each(normalisation.max - normalisation.min) };
    case 'standard':
      return { offset: perFeature(normalisation.mean), divisor: perFeature(normalisation.std) };
    case 'min-max-per-feature':
      return { offset: perFeature(normalisation.min), divisor: perFeature(featureRanges(normalisation)) };
  }
}

/**
 * Checks rows and writes them, scaled as the model was trained to see them, into `into` from `at`,
 * flat, each row's values one after the other, as FP32 (as they enter a tensor); returns `into`,
 * by default an array of just their values. `into` must have room for them.
 */
export type Normalise = (rows: readonly unknown[], into?: Float32Array, at?: number) => Float32Array;

/**
 * A model's `Normalise`. Each row must be an array of the instance's width (`dims`) of numbers that
 * FP32 holds as finite values; the first that is not is named (InvalidInstanceError), and what was
 * written of the rows before it is left for the caller to overwrite. A row of a window model holds
 * its steps one after the other, so a per-feature statistic applies to every `features`-th value.
 * Training, import and serving all call this, so they cannot drift apart.
 *
 * The server calls it on each request's rows as they arrive, while they are in the processor's
 * caches, and writes them where its forward pass reads them (Batcher), rather than checking them
 * then and scaling and copying them cold when their batch is scored.
 */
export function normaliser(normalisation: Normalisation, dims: readonly number[]): Normalise {
  const width = instanceWidth(dims);
  const { offset, divisor } = scalingOf(normalisation, dims);
  // A function of its own that the loop calls, not arrays it reads: V8 inlines the one it is called
  // with, and its arrays, constants then, are read without reloading them or checking the index
  // (6.5k -> 5.2k instructions a request, docs/benchmarks.md).
  const scale = (value: number, i: number) => (value - offset[i]!) / divisor[i]!;
  return (rows, into = new Float32Array(rows.length * width), at = 0) => {
    if (at + rows.length * width > into.length) throw new RangeError(`no room for ${rows.length} rows of ${width} values at ${at} of ${into.length}`);
    // Plain loops: this runs for every value served, and a callback per row costs half again.
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      if (!Array.isArray(row) || row.length !== width) throw new InvalidInstanceError(r, shapeProblem(row, dims));
      // Where the row goes, reckoned once: `at` counted along in the loop stayed a tagged value there (49 instructions a value against 44).
      const rowAt = at + r * width;
      for (let i = 0; i < width; i++) {
        const value: unknown = row[i];
        // One test on the common path: NaN, ±Infinity and values past FP32's range all fail it.
        if (typeof value !== 'number' || !Number.isFinite(Math.fround(value))) throw new InvalidInstanceError(r, valueProblem(i, value));
        into[rowAt + i] = scale(value, i);
      }
    }
    return into;
  };
}

/**
 * A model's forward pass: `rows` normalised rows, flat, as FP32, in; their reconstructions, flat, out.
 * It keeps what it needs of the model's weights, as they were when it was made (after training):
 * dispose of it with the model.
 */
export interface ForwardPass {
  /** The values in an instance, flat: the input's width (a window's steps × features). */
  readonly width: number;
  run(input: Float32Array, rows: number): Float32Array;
  dispose(): void;
}

/**
 * The activations computed inside the fused product, with its bias; tanh, which the wasm backend's
 * fused product lacks, after it, with the bias added apart. tfjs-layers fuses relu, linear and elu
 * as here, but runs a sigmoid layer's bias and activation as kernels of their own: two kernels more
 * a pass (1.4 µs a request of the server on wasm, docs/benchmarks.md), for outputs that differ from
 * predict's by at most two units of their last bit (on the cpu and wasm backends; 6e-8 at most on
 * the bundled model).
 */
const FUSED_ACTIVATIONS = new Set(['relu', 'linear', 'elu', 'sigmoid']);
/** Each activation computed after the product, by its kernel's name. */
const SEPARATE_ACTIVATIONS: Record<string, string> = { tanh: tf.Tanh };

/** One of a backend's kernels, its attributes bound: inputs in, one output out. */
type Kernel = (inputs: tf.NamedTensorInfoMap) => tf.TensorInfo;

/** How a forward pass runs the backend's kernels, and frees what they make. */
export interface KernelRunner {
  kernel(name: string, attrs?: tf.NamedAttrMap): Kernel;
  /** The values that `compute` makes of `input` (in `shape`), every tensor made on the way freed. */
  values(input: Float32Array, shape: number[], compute: (input: tf.TensorInfo) => tf.TensorInfo): Float32Array;
}

/** Kernels run through TensorFlow.js's engine, which tracks each tensor they make: any backend. */
export const engineKernels: KernelRunner = {
  // Here every TensorInfo a kernel is given is a Tensor: the input, a weight or a kernel's output.
  kernel: (name, attrs = {}) => (inputs) => tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs) as tf.Tensor,
  values: (input, shape, compute) => {
    const tensor = tf.tidy(() => compute(tf.tensor(input, shape)) as tf.Tensor);
    // Read outside tidy(), which would walk every element of a returned typed array.
    const values = tensor.dataSync() as Float32Array;
    tensor.dispose();
    return values;
  },
};

/**
 * The current backend's kernels called on the backend itself, as the engine calls them, with none
 * of its tracking: the engine's work around each kernel (tensors made, scoped and freed, its state
 * checked) cost the server about 2 µs a request of the 7 that its forward pass cost it in all, on
 * wasm (docs/benchmarks.md). For backends whose kernels take and give plain TensorInfos
 * (`KERNELS_OF_TENSOR_INFOS`); what a pass makes is freed when its values are read.
 */
export function backendKernels(): KernelRunner {
  const backend = tf.backend();
  const backendName = tf.getBackend();
  const made: tf.TensorInfo[] = [];
  const kept = (info: tf.TensorInfo) => {
    made.push(info);
    return info;
  };
  return {
    kernel: (name, attrs = {}) => {
      const { kernelFunc } = tf.getKernel(name, backendName);
      return (inputs) => kept(kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo);
    },
    values: (input, shape, compute) => {
      try {
        const tensor = kept({ dataId: backend.write(input, shape, 'float32'), shape, dtype: 'float32' });
        return backend.readSync(compute(tensor).dataId) as Float32Array;
      } finally {
        for (const { dataId } of made) backend.disposeData(dataId);
        made.length = 0;
      }
    },
  };
}

/** The backends whose kernels take TensorInfos and make them (tfjs-node's call TensorFlow.js's ops, which need its engine). */
const KERNELS_OF_TENSOR_INFOS = new Set(['wasm', 'cpu']);

/** The fastest way to run the current backend's kernels. */
const kernelRunner = (): KernelRunner => (KERNELS_OF_TENSOR_INFOS.has(tf.getBackend()) ? backendKernels() : engineKernels);

/**
 * A model's forward pass. A Sequential stack of Dense layers (what `npm run train` builds, and most
 * autoencoders of tabular rows) runs as the matrix products of its own weights: the arithmetic
 * tfjs-layers does, without its bookkeeping around each call, which is half the time of a forward
 * pass of the bundled model (138 µs against 68 µs for 4 rows, on the wasm backend). Each product is
 * the backend's _FusedMatMul kernel, called as tf.fused.matMul calls it but on rows kept as one
 * batch of a matrix, [1, rows, width], from the input to the output, and on each kernel reshaped to
 * a batch of one matrix when the pass is made: the op would reshape its operands and its result
 * and wrap it for gradients at every layer, and each kernel a pass runs costs it several µs. The
 * kernels run through `kernels`: by default the backend's own, called directly where it allows
 * (backendKernels). Any other model runs through `predict`. Inference only: no gradient flows
 * through it.
 */
export function forwardPass(model: tf.LayersModel, kernels: KernelRunner = kernelRunner()): ForwardPass {
  const dims = model.inputs[0]!.shape.slice(1) as number[];
  const width = instanceWidth(dims);
  const layers = model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
  const activationOf = (layer: tf.layers.Layer) => String(layer.getConfig().activation);
  const stackOfDense =
    model instanceof tf.Sequential &&
    layers.every((layer) => {
      const activation = activationOf(layer);
      return layer.getClassName() === 'Dense' && layer.getConfig().useBias === true && (FUSED_ACTIVATIONS.has(activation) || activation in SEPARATE_ACTIVATIONS);
    });
  if (!stackOfDense) {
    // batchSize: predict would otherwise split the batch into forward passes of 32 rows.
    const run = (input: Float32Array, rows: number) => engineKernels.values(input, [rows, ...dims], (x) => model.predict(x as tf.Tensor, { batchSize: rows }) as tf.Tensor);
    return { width, run, dispose: () => {} };
  }
  const reshaped: tf.Tensor3D[] = [];
  const product = (activation: string) => kernels.kernel(tf._FusedMatMul, { transposeA: false, transposeB: false, activation });
  const steps = layers.map((layer): ((x: tf.TensorInfo) => tf.TensorInfo) => {
    const [weights, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
    // A view of the layer's kernel as a batch of one matrix: it shares the weights' memory.
    const b = tf.keep(tf.reshape(weights, [1, ...weights.shape]) as tf.Tensor3D);
    reshaped.push(b);
    const activation = activationOf(layer);
    if (FUSED_ACTIVATIONS.has(activation)) {
      const fused = product(activation);
      return (a) => fused({ a, b, bias });
    }
    const [linear, add, activate] = [product('linear'), kernels.kernel(tf.Add), kernels.kernel(SEPARATE_ACTIVATIONS[activation]!)];
    return (a) => activate({ x: add({ a: linear({ a, b }), b: bias }) });
  });
  return {
    width,
    run: (input, rows) => kernels.values(input, [1, rows, width], (x) => steps.reduce((y, step) => step(y), x)),
    dispose: () => reshaped.forEach((tensor) => tensor.dispose()),
  };
}

/**
 * Each row's score: the mean of its values' absolute (or, `squared`, squared) errors. The choice is
 * made once a row, not once a value: V8 tests a boolean's truth afresh at every value (1.3 ns a
 * value for absolute errors and 3.2 for squared ones, against 0.8 like this).
 */
function rowErrors(input: Float32Array, output: Float32Array, width: number, squared: boolean): number[] {
  const errors = new Array<number>(input.length / width);
  for (let row = 0, at = 0; row < errors.length; row++) {
    let sum = 0;
    const end = at + width;
    if (squared) {
      for (; at < end; at++) {
        const difference = input[at]! - output[at]!;
        sum += difference * difference;
      }
    } else {
      for (; at < end; at++) sum += Math.abs(input[at]! - output[at]!);
    }
    errors[row] = sum / width;
  }
  return errors;
}

/**
 * Reconstructs normalised rows (normaliser's values) in one forward pass and scores each row by
 * `score`, the mean absolute or squared error, against the rows as FP32 holds them: the score, as
 * training, import and serving all compute it.
 */
function reconstruct(
  forward: ForwardPass,
  input: Float32Array,
  score: ScoreFunction,
): { errors: number[]; reconstructions: (row: number) => number[]; attributions: (row: number) => number[] } {
  const { width } = forward;
  const rows = input.length / width;
  if (rows === 0) return { errors: [], reconstructions: () => [], attributions: () => [] };
  const output = forward.run(input, rows);
  const squared = score === 'mse';
  const attributions = (row: number) =>
    Array.from(output.subarray(row * width, (row + 1) * width), (value, i) => {
      const difference = input[row * width + i]! - value;
      return finiteFp32(squared ? difference * difference : Math.abs(difference));
    });
  return { errors: rowErrors(input, output, width, squared), reconstructions: (row) => Array.from(output.subarray(row * width, (row + 1) * width), finiteFp32), attributions };
}

/**
 * The scores of normalised rows through `model` in one forward pass, made for them alone: for
 * training and import, which score a model's rows once.
 */
export function reconstructionErrors(model: tf.LayersModel, normalised: Float32Array, score: ScoreFunction): number[] {
  const forward = forwardPass(model);
  try {
    return reconstruct(forward, normalised, score).errors;
  } finally {
    forward.dispose();
  }
}

/**
 * The model runtime: the autoencoder, its normalisation and its threshold. It knows nothing of
 * HTTP; the protocol adapters and the batcher call `score` with plain arrays.
 */
export class Detector {
  static async load(dir: string, options: DetectorOptions = {}): Promise<Detector> {
    const { artifacts, metadata } = await readArtifact(dir);
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const { dims } = inputOf(metadata.signature);
    const expected = JSON.stringify([null, ...dims]);
    if (model.inputs.length !== 1 || model.outputs.length !== 1 || JSON.stringify(model.inputs[0]!.shape) !== expected || JSON.stringify(model.outputs[0]!.shape) !== expected) {
      model.dispose();
      const [from, to] = dims.length === 1 ? [`rows of ${dims[0]} values`, `rows of ${dims[0]}`] : [`windows of ${dims[0]} steps of ${dims[1]} features`, 'windows of that shape'];
      throw new ArtifactError(
        `${dir}: metadata.json's signature says the model maps ${from} to ${to}; ` +
          `model.json's model maps ${JSON.stringify(model.inputs.map((i) => i.shape))} to ${JSON.stringify(model.outputs[0]?.shape)}`,
      );
    }
    return new Detector(model, metadata, options.threshold ?? metadata.threshold.value);
  }

  readonly name: string;
  readonly version: string;
  readonly signature: Signature;
  /** The values in an instance, flat: the input's width (a window's steps × features). */
  readonly inputLength: number;
  /** An instance's dimensions: [width], or [steps, features]. */
  readonly dims: InstanceDims;
  readonly backend: string;
  /** The distribution of normal rows' scores, when metadata.json records one. */
  readonly calibration: Calibration | undefined;
  /**
   * Checks instances, each an array of `inputLength` numbers, and normalises them, flat, for
   * scoreNormalised; throws InvalidInstanceError naming the first that cannot be scored (see normaliser).
   */
  readonly normalise: Normalise;
  private readonly forward: ForwardPass;

  private constructor(
    private readonly model: tf.LayersModel,
    readonly metadata: ModelMetadata,
    readonly threshold: number,
  ) {
    this.name = metadata.name;
    this.version = metadata.version;
    this.signature = metadata.signature;
    ({ width: this.inputLength, dims: this.dims } = inputOf(metadata.signature));
    this.backend = tf.getBackend();
    this.normalise = normaliser(metadata.normalisation, this.dims);
    this.forward = forwardPass(model);
    this.calibration = metadata.calibration && new Calibration(metadata.calibration);
  }

  /** Scores a batch in one forward pass; throws InvalidInstanceError before any work on bad input. */
  score(instances: readonly unknown[], options: ScoreOptions = {}): Score[] {
    return this.scoreNormalised(this.normalise(instances), options);
  }

  /**
   * Scores normalised rows, flat, as `normalise` writes them, in one forward pass: for the
   * batcher, which normalises each request's rows as it queues them, so that a bad row
   * rejects its request alone.
   */
  scoreNormalised(input: Float32Array, options: ScoreOptions = {}): Score[] {
    const { errors, reconstructions, attributions } = reconstruct(this.forward, input, scoreOf(this.metadata));
    const { calibration } = this;
    if (options.pValue && !calibration) throw new RangeError(`model "${this.name}" has no calibration to compute p-values from`);
    return errors.map((error, row) => {
      // A score that overflowed is as far from normal as a score can be: NaN fails `<=` too.
      const isAnomaly = !(error <= this.threshold);
      const reconstructionError = finiteFp32(error);
      if (!options.reconstruction && !options.attribution && !options.pValue) return { reconstructionError, isAnomaly };
      return {
        reconstructionError,
        isAnomaly,
        ...(options.reconstruction && { reconstruction: reconstructions(row) }),
        ...(options.attribution && { attribution: attributions(row) }),
        ...(options.pValue && { pValue: calibration!.pValue(error) }),
      };
    });
  }

  dispose(): void {
    this.forward.dispose();
    this.model.dispose();
  }
}
