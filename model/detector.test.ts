import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backendKernels, Detector, engineKernels, forwardPass, normaliser, type KernelRunner } from './detector.ts';
import { FP32_MAX, InvalidInstanceError } from './instances.ts';
import { ArtifactError, contentVersion, readArtifact, signatureFor, type ModelMetadata, type Normalisation } from './artifact.ts';
import { BUNDLED_MODEL, useBundledModel } from '../test/bundled-model.ts';
import { describeWithEcgData, ECG_CSV } from '../test/ecg-data.ts';
import { readLabelledCsv } from './data.ts';
import { selectBackend } from './backend.ts';

const ARTIFACTS = BUNDLED_MODEL;
const bundled = useBundledModel();
let detector: Detector;
let example: Record<'normal' | 'anomalous', number[]>;
beforeAll(() => {
  detector = bundled.detector;
  example = { normal: bundled.normal, anomalous: bundled.anomalous };
});

/**
 * The autoencoder's forward pass in plain JavaScript from the stored weights: an independent check
 * of the normalisation, the layers and the score.
 */
async function scoreByHand(beat: number[]): Promise<number> {
  const { artifacts, metadata } = await readArtifact(ARTIFACTS);
  const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  const { normalisation } = metadata;
  if (normalisation.method !== 'min-max') throw new Error('the bundled model is min-max scaled');
  const { min, max } = normalisation;
  const input = beat.map((v) => (v - min) / (max - min));
  const names = Object.keys(weights).filter((name) => name.endsWith('kernel'));
  let activation = input;
  names.forEach((kernelName, layer) => {
    const kernel = weights[kernelName]!.arraySync() as number[][];
    const bias = weights[kernelName.replace(/kernel$/, 'bias')]!.arraySync() as number[];
    const z = bias.map((b, j) => b + activation.reduce((sum, a, i) => sum + a * kernel[i]![j]!, 0));
    activation = layer === names.length - 1 ? z.map((v) => 1 / (1 + Math.exp(-v))) : z.map((v) => Math.max(0, v));
  });
  return input.reduce((sum, v, i) => sum + Math.abs(v - activation[i]!), 0) / input.length;
}

describe('Detector', () => {
  it('loads the bundled model with its name, version and threshold', () => {
    expect(detector.name).toBe('ecg-autoencoder');
    expect(detector.version).toMatch(/^[0-9a-f]{12}$/);
    expect(detector.inputLength).toBe(140);
    expect(detector.threshold).toBe(detector.metadata.threshold.value);
    expect(['tensorflow', 'wasm', 'cpu']).toContain(detector.backend);
  });

  it('calls the mean normal beat normal and the mean anomalous beat an anomaly', () => {
    const [normal, anomalous] = detector.score([example.normal, example.anomalous]);
    expect(normal!.isAnomaly).toBe(false);
    expect(anomalous!.isAnomaly).toBe(true);
    expect(anomalous!.reconstructionError).toBeGreaterThan(normal!.reconstructionError);
  });

  it('scores as a hand-written forward pass of the stored weights does', async () => {
    const [score] = detector.score([example.anomalous]);
    expect(score!.reconstructionError).toBeCloseTo(await scoreByHand(example.anomalous!), 5);
  });

  it('gives each row of a batch the score it gets alone', () => {
    const rows = [example.normal!, example.anomalous!, example.normal!.map((v) => v * 1.5)];
    const batch = detector.score(rows);
    rows.forEach((row, i) => expect(batch[i]!.reconstructionError).toBeCloseTo(detector.score([row])[0]!.reconstructionError, 6));
  });

  it('returns the reconstruction when asked, in normalised units', () => {
    const [withReconstruction] = detector.score([example.normal], { reconstruction: true });
    expect(withReconstruction!.reconstruction).toHaveLength(140);
    expect(withReconstruction!.reconstruction!.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(detector.score([example.normal])[0]).not.toHaveProperty('reconstruction');
  });

  it('scores an empty batch as no rows', () => {
    expect(detector.score([])).toEqual([]);
  });

  it('applies a threshold override', async () => {
    const strict = await Detector.load(ARTIFACTS, { threshold: 0 });
    expect(strict.threshold).toBe(0);
    expect(strict.score([example.normal])[0]!.isAnomaly).toBe(true);
    strict.dispose();
  });

  const beat = () => [...example.normal!];
  it.each([
    ['139 values', () => beat().slice(1), 'instance 1: expected 140 values, got 139'],
    ['141 values', () => [...beat(), 0], 'instance 1: expected 140 values, got 141'],
    ['NaN', () => Object.assign(beat(), { 5: NaN }), 'instance 1: value 5 is NaN, expected a finite number'],
    ['Infinity', () => Object.assign(beat(), { 0: -Infinity }), 'instance 1: value 0 is -Infinity, expected a finite number'],
    ['a string', () => Object.assign(beat(), { 9: '0.5' }), 'instance 1: value 9 is the string "0.5", expected a finite number'],
    ['null', () => Object.assign(beat(), { 139: null }), 'instance 1: value 139 is null, expected a finite number'],
    ['a number instead of a row', () => 7, 'instance 1: expected an array of 140 numbers, got 7'],
  ])('rejects an instance with %s, naming its index and the problem', (_, bad, message) => {
    const error = (() => {
      try {
        detector.score([beat(), bad()]);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidInstanceError);
    expect((error as InvalidInstanceError).index).toBe(1);
    expect((error as Error).message).toBe(message);
  });

  it('leaks no tensors over 10,000 calls', () => {
    detector.score([example.normal]); // the first call may create lasting state
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10_000; i++) detector.score([i % 2 ? example.normal : example.anomalous], { reconstruction: i % 3 === 0 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('normaliser', () => {
  /** A value's normalisation as each method defines it, written out. */
  const byHand = (normalisation: Normalisation, value: number, feature: number) => {
    switch (normalisation.method) {
      case 'none':
        return value;
      case 'min-max':
        return (value - normalisation.min) / (normalisation.max - normalisation.min);
      case 'standard':
        return (value - normalisation.mean[feature]!) / normalisation.std[feature]!;
      case 'min-max-per-feature':
        return (value - normalisation.min[feature]!) / (normalisation.max[feature]! - normalisation.min[feature]! || 1);
    }
  };
  const value = fc.double({ min: -1e6, max: 1e6, noNaN: true });
  const positive = fc.double({ min: 1e-3, max: 1e3, noNaN: true });
  const normalisationOf = (features: number): fc.Arbitrary<Normalisation> =>
    fc.oneof(
      fc.constant({ method: 'none' as const }),
      fc.tuple(value, positive).map(([min, range]) => ({ method: 'min-max' as const, min, max: min + range })),
      fc.tuple(fc.array(value, { minLength: features, maxLength: features }), fc.array(positive, { minLength: features, maxLength: features })).map(([mean, std]) => ({ method: 'standard' as const, mean, std })),
      // A constant feature (max = min) included: its range reads as 1.
      fc.tuple(fc.array(value, { minLength: features, maxLength: features }), fc.array(fc.oneof(positive, fc.constant(0)), { minLength: features, maxLength: features })).map(([min, ranges]) => ({
        method: 'min-max-per-feature' as const,
        min,
        max: min.map((m, i) => m + ranges[i]!),
      })),
    );
  const cases = fc
    .record({ features: fc.integer({ min: 1, max: 4 }), steps: fc.integer({ min: 1, max: 3 }), window: fc.boolean() })
    .chain(({ features, steps, window }) => {
      const dims = window ? [steps, features] : [features];
      const width = window ? steps * features : features;
      return fc.record({ dims: fc.constant(dims), normalisation: normalisationOf(features), rows: fc.array(fc.array(value, { minLength: width, maxLength: width }), { maxLength: 4 }) });
    });

  it('scales every value of every row as its method defines it, a window\'s per-feature statistic at every step, rows one after the other, as FP32', () => {
    fc.assert(
      fc.property(cases, ({ dims, normalisation, rows }) => {
        const features = dims.at(-1)!;
        expect(normaliser(normalisation, dims)(rows)).toEqual(Float32Array.from(rows.flatMap((row) => row.map((v, i) => byHand(normalisation, v, i % features)))));
      }),
    );
  });

  it('writes into a given array from a given place, and nothing else of it', () => {
    fc.assert(
      fc.property(cases, fc.nat({ max: 5 }), fc.nat({ max: 5 }), ({ dims, normalisation, rows }, before, after) => {
        const normalise = normaliser(normalisation, dims);
        const alone = normalise(rows);
        const into = new Float32Array(before + alone.length + after).fill(7);
        expect(normalise(rows, into, before)).toBe(into);
        expect(into).toEqual(Float32Array.of(...Array<number>(before).fill(7), ...alone, ...Array<number>(after).fill(7)));
      }),
    );
  });

  it('refuses to write past the end of a given array', () => {
    const into = new Float32Array(5);
    expect(() => normaliser({ method: 'none' }, [2])([[1, 2], [3, 4]], into, 2)).toThrow(new RangeError('no room for 2 rows of 2 values at 2 of 5'));
    expect(into).toEqual(new Float32Array(5));
  });

  it('names the first row, and the first value in it, that cannot be scored', () => {
    const bad = fc.oneof(fc.constant(Number.NaN), fc.constant(Infinity), fc.constant(1e39), fc.constant(null), fc.constant('1'), fc.constant([1]));
    fc.assert(
      fc.property(cases, fc.nat(), fc.nat(), bad, ({ dims, normalisation, rows }, r, i, badValue) => {
        fc.pre(rows.length > 0);
        const row = r % rows.length;
        const position = i % rows[0]!.length;
        const given: unknown[][] = rows.map((values) => [...values]);
        given[row]![position] = badValue;
        expect(() => normaliser(normalisation, dims)(given)).toThrow(new RegExp(`^instance ${row}: value ${position} is `));
      }),
    );
  });
});

describe('forwardPass', () => {
  // The two ways a pass runs kernels: through the engine (what tfjs-node's backend needs) and on
  // the backend itself (what wasm and cpu get by default); each must give the same numbers.
  const runners = [
    ['through the engine', () => engineKernels],
    ['on the backend itself', backendKernels],
  ] as const;

  /** The model's output for some rows through forwardPass and through tfjs-layers' predict. */
  function bothWays(model: tf.LayersModel, width: number, kernels: KernelRunner) {
    const values = Float32Array.from({ length: 3 * width }, (_, i) => 0.5 + 0.4 * Math.sin(i));
    const forward = forwardPass(model, kernels);
    const own = forward.run(values, 3);
    forward.dispose();
    const predicted = tf.tidy(() => model.predict(tf.tensor2d(values, [3, width])) as tf.Tensor).dataSync();
    return { own: Array.from(own), predicted: Array.from(predicted) };
  }
  const dense = (activation: string, units: number, inputShape?: number[]) =>
    tf.layers.dense({
      units,
      activation: activation as 'relu',
      inputShape,
      kernelInitializer: tf.initializers.glorotUniform({ seed: units }),
      // Not the default of zeros: a bias left out must show.
      biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: units }),
    });
  const bundledModel = async () => tf.loadLayersModel(tf.io.fromMemory((await readArtifact(ARTIFACTS)).artifacts));
  /** Runs `test` on the backend `name`, then returns to the one before. */
  const onBackend = async <T,>(name: 'cpu' | 'wasm', test: () => Promise<T>): Promise<T> => {
    const backend = tf.getBackend();
    await selectBackend(name);
    try {
      return await test();
    } finally {
      await tf.setBackend(backend);
    }
  };

  // The bundled model's last layer is a sigmoid: its outputs lie in (0, 1), where FP32's values
  // are at most 2^-24 apart.
  it.each(['cpu', 'wasm'] as const)("gives the bundled model predict's numbers to within two units of their last bit on the %s backend, the same both ways", (name) =>
    onBackend(name, async () => {
      const model = await bundledModel();
      const [engine, backend] = runners.map(([, kernels]) => bothWays(model, 140, kernels()));
      engine!.own.forEach((value, i) => expect(Math.abs(value - engine!.predicted[i]!)).toBeLessThanOrEqual(2 * 2 ** -24));
      expect(backend!.own).toEqual(engine!.own);
      model.dispose();
    }),
  );

  describe.each(runners)('with kernels run %s', (_, kernels) => {
    it.each([
      ['tanh and linear Dense layers', () => tf.sequential({ layers: [dense('tanh', 4, [6]), dense('linear', 6)] })],
      ['an activation it does not compute itself (softplus)', () => tf.sequential({ layers: [dense('softplus', 4, [6]), dense('sigmoid', 6)] })],
      [
        'a functional model',
        () => {
          const input = tf.input({ shape: [6] });
          return tf.model({ inputs: input, outputs: dense('sigmoid', 6).apply(dense('relu', 3).apply(input)) as tf.SymbolicTensor });
        },
      ],
    ])('gives %s exactly what predict gives, on cpu and on wasm', async (_, build) => {
      for (const name of ['cpu', 'wasm'] as const) {
        const { own, predicted } = await onBackend(name, async () => {
          const model = build();
          try {
            return bothWays(model, 6, kernels());
          } finally {
            model.dispose();
          }
        });
        expect(own).toEqual(predicted);
      }
    });

    it.each(['cpu', 'wasm'] as const)('keeps no tensor and no data on the %s backend once disposed, and leaves the model its weights', (name) =>
      onBackend(name, async () => {
        const model = await bundledModel();
        const zeros = new Float32Array(2 * 140);
        const predict = () => tf.tidy(() => Array.from((model.predict(tf.tensor2d(zeros, [2, 140])) as tf.Tensor).dataSync()));
        const held = () => ({ tensors: tf.memory().numTensors, data: tf.backend().numDataIds() });
        const before = { held: held(), output: predict() };
        const forward = forwardPass(model, kernels());
        forward.run(zeros, 2);
        forward.run(zeros.subarray(0, 140), 1);
        forward.dispose();
        expect(held()).toEqual(before.held);
        expect(predict()).toEqual(before.output);
        model.dispose();
      }),
    );
  });
});

describe('loading a model folder', () => {
  let dir: string;
  let metadata: ModelMetadata;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'model-'));
    metadata = JSON.parse(await readFile(`${ARTIFACTS}/metadata.json`, 'utf8'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const copyWith = async (name: string, change: (m: ModelMetadata) => unknown) => {
    const target = path.join(dir, name);
    await cp(ARTIFACTS, target, { recursive: true });
    await writeFile(path.join(target, 'metadata.json'), JSON.stringify(change(structuredClone(metadata))));
    return target;
  };

  it.each(['mae', 'mse'] as const)('scores each row by the mean of its values\' errors that metadata.json names: %s', async (score) => {
    const { artifacts } = await readArtifact(ARTIFACTS);
    const named: ModelMetadata = { ...metadata, score };
    named.version = await contentVersion(artifacts, named);
    const scoring = await Detector.load(await copyWith(score, () => named));
    if (metadata.normalisation.method !== 'min-max') throw new Error('the bundled model is min-max scaled');
    const { min, max } = metadata.normalisation;
    const rows = [example.normal!, example.anomalous!];
    scoring.score(rows, { reconstruction: true }).forEach(({ reconstructionError, reconstruction }, r) => {
      const errors = rows[r]!.map((value, i) => Math.abs(Math.fround((value - min) / (max - min)) - reconstruction![i]!));
      expect(reconstructionError).toBeCloseTo(errors.reduce((sum, error) => sum + (score === 'mse' ? error * error : error), 0) / errors.length, 12);
    });
    scoring.dispose();
  });

  it('scores a row that overflows inside the model: an anomaly, its score FP32\'s largest value, its reconstruction finite', async () => {
    // A scale so narrow that any value normalises past FP32's range, as a badly fitted scaler can.
    const { artifacts } = await readArtifact(ARTIFACTS);
    const narrow: ModelMetadata = { ...metadata, normalisation: { method: 'min-max', min: 0, max: 1e-30 } };
    narrow.version = await contentVersion(artifacts, narrow);
    const overflowing = await Detector.load(await copyWith('overflow', () => narrow));
    const [score] = overflowing.score([Array(140).fill(1e10)], { reconstruction: true });
    expect(score!.reconstructionError).toBe(FP32_MAX);
    expect(score!.isAnomaly).toBe(true);
    expect(score!.reconstruction!.every((value) => Math.abs(value) <= FP32_MAX)).toBe(true);
    overflowing.dispose();
  });

  it.each([
    ['a missing folder', async () => path.join(dir, 'absent'), /absent\/model\.json: no such file/],
    ['metadata with a field of the wrong type', () => copyWith('bad-field', (m) => ({ ...m, threshold: { value: '0.1' } })), /metadata\.json: threshold\.value: .*expected number/],
    ['metadata from another model', () => copyWith('other', (m) => ({ ...m, threshold: { ...m.threshold, value: 1 } })), /records version \w+, but the model files hash to \w+/],
    [
      'a signature the model does not take',
      () => copyWith('width', (m) => ({ ...m, signature: signatureFor(10, { input: 'beat' }, false), examples: undefined })),
      /metadata\.json's signature says the model maps rows of 10 values to rows of 10; model\.json's model maps \[\[null,140\]\] to \[null,140\]/,
    ],
    ['an example of another width', () => copyWith('example', (m) => ({ ...m, examples: [{ name: 'short', values: [1, 2] }] })), /example "short" has 2 values; the input has 140/],
    [
      'a weights path outside the folder (refused before it is opened: it would read as the right size)',
      async () => {
        const target = await copyWith('escape', (m) => m);
        await cp(path.join(target, 'weights.bin'), path.join(dir, 'outside.bin'));
        const modelJson = JSON.parse(await readFile(path.join(target, 'model.json'), 'utf8'));
        modelJson.weightsManifest[0].paths = ['../outside.bin'];
        await writeFile(path.join(target, 'model.json'), JSON.stringify(modelJson));
        return target;
      },
      /model\.json: the weights path "\.\.\/outside\.bin" is outside the model folder/,
    ],
    [
      'a truncated weights.bin',
      async () => {
        const target = await copyWith('truncated', (m) => m);
        const weights = await readFile(path.join(target, 'weights.bin'));
        await writeFile(path.join(target, 'weights.bin'), weights.subarray(0, 1000));
        return target;
      },
      /model\.json: the weight files \(weights\.bin\) hold 1000 bytes; the weightsManifest describes \d+ bytes: a file is truncated or belongs to another model/,
    ],
    ['a signature with an output of the wrong datatype', () => copyWith('datatype', (m) => ({ ...m, signature: { ...m.signature, outputs: [m.signature.outputs[0], { ...m.signature.outputs[1], datatype: 'FP32' }, m.signature.outputs[2]] } })), /signature\.outputs\.1\.datatype/],
  ])('rejects %s with a message naming the file', async (_, prepare, message) => {
    const error = await Detector.load(await prepare()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactError);
    expect((error as Error).message).toMatch(message);
  });
});

describeWithEcgData('the runtime and the evaluation agree', () => {
  it('scoring the test rows one request at a time gives the recorded confusion matrix', async () => {
    const data = await readLabelledCsv(ECG_CSV);
    const counts = { truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0 };
    for (const row of detector.metadata.split!.testRowIndices) {
      const anomalous = data.labels[row] === 0;
      const { isAnomaly } = detector.score([data.rows[row]])[0]!;
      counts[isAnomaly ? (anomalous ? 'truePositives' : 'falsePositives') : anomalous ? 'falseNegatives' : 'trueNegatives']++;
    }
    expect(counts).toEqual(detector.metadata.evaluation!.confusionMatrix);
  });
});
