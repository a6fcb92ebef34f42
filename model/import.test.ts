import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetadata, type Normalisation } from './artifact.ts';
import { seededRandom } from './data.ts';
import { supportedLayers } from './keras.ts';
import { chooseThreshold } from './threshold.ts';
import { loggedError, runCommand } from '../test/command.ts';
import { spawnServer } from '../lib/server-process.ts';
import { SCALER_PYTHON } from './scaler.ts';
import { forwardByHand, randomAutoencoder, randomLstmAutoencoder, writeKerasModel, type AutoencoderSpec, type KerasFileOptions } from '../test/keras-files.ts';

const WIDTH = 12;

/** Runs `npm run import` as a user would. */
const runImport = (args: string[]) => runCommand('model/import.ts', args);

/** Normal rows: one smooth shape with noise; anomalous rows: another. Labelled 1 and 0 in the last column. */
function labelledRows(seed: number): { rows: number[][]; labels: number[] } {
  const random = seededRandom(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < 80; i++) {
    const anomalous = i % 4 === 3;
    rows.push(Array.from({ length: WIDTH }, (_, j) => (anomalous ? 3 * Math.cos(j) : 2 * Math.sin(j / 2)) + 0.3 * (random() - 0.5)));
    labels.push(anomalous ? 0 : 1);
  }
  return { rows, labels };
}

/** The normalisation of a row in float64, as the tests' own reference. */
function normaliseByHand(normalisation: Normalisation, row: readonly number[]): number[] {
  switch (normalisation.method) {
    case 'none':
      return [...row];
    case 'min-max':
      return row.map((v) => (v - normalisation.min) / (normalisation.max - normalisation.min));
    case 'standard':
      return row.map((v, i) => (v - normalisation.mean[i]!) / normalisation.std[i]!);
    case 'min-max-per-feature':
      return row.map((v, i) => (v - normalisation.min[i]!) / (normalisation.max[i]! - normalisation.min[i]! || 1));
  }
}

/** A row's reconstruction error, computed independently of the server and of TensorFlow.js. */
function scoreByHand(spec: AutoencoderSpec, normalisation: Normalisation, row: readonly number[]): number {
  const input = normaliseByHand(normalisation, row);
  const output = forwardByHand(spec, input);
  return input.reduce((sum, v, i) => sum + Math.abs(v - output[i]!), 0) / input.length;
}

let scratch: string;
let dataFile: string;
const data = labelledRows(5);
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'import-'));
  dataFile = path.join(scratch, 'rows.csv');
  await writeFile(dataFile, data.rows.map((row, i) => [...row, data.labels[i]].join(',')).join('\n') + '\n');
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

/** Writes a model file and imports it; returns the command's result and the folder. */
async function importModel(name: string, spec: AutoencoderSpec, file: Omit<KerasFileOptions, 'scratch'>, args: string[]) {
  const dir = path.join(scratch, name);
  await mkdir(dir, { recursive: true });
  const modelFile = path.join(dir, `model.${file.format}`);
  await writeKerasModel(modelFile, spec, { ...file, scratch: dir });
  const out = path.join(dir, 'imported');
  return { ...(await runImport([modelFile, '--out', out, '--name', name, ...args])), out, modelFile };
}

const withExtras = ['BatchNormalization', 'LeakyReLU', 'Dropout'] as const;
const lstm = (seed: number) => randomLstmAutoencoder(WIDTH, 3, seed);
const cases = [
  { name: 'keras3-keras-functional', file: { format: 'keras', dialect: 'keras3', api: 'Functional', customNames: true }, extra: withExtras, args: ['--normalisation', 'standard', '--data'] },
  { name: 'keras3-keras-sequential', file: { format: 'keras', dialect: 'keras3', api: 'Sequential' }, extra: [], args: ['--normalisation', 'min-max', '--min=-4', '--max=4', '--threshold', '0.3'] },
  { name: 'keras3-h5-sequential', file: { format: 'h5', dialect: 'keras3', api: 'Sequential' }, extra: [], args: ['--normalisation', 'none', '--threshold', '1.5'] },
  { name: 'keras2-h5-functional', file: { format: 'h5', dialect: 'keras2', api: 'Functional', customNames: true }, extra: withExtras, args: ['--normalisation', 'min-max', '--data'] },
  { name: 'keras2-h5-sequential', file: { format: 'h5', dialect: 'keras2', api: 'Sequential' }, extra: [], args: ['--normalisation', 'standard', '--mean', '0', '--std', '2', '--threshold', '0.5'] },
  { name: 'keras3-h5-per-feature', file: { format: 'h5', dialect: 'keras3', api: 'Functional' }, extra: [], args: ['--normalisation', 'min-max-per-feature', '--data'] },
  { name: 'keras3-keras-nested', file: { format: 'keras', dialect: 'keras3', api: 'Sequential', nested: true }, extra: withExtras, args: ['--normalisation', 'none', '--threshold', '0.4'] },
  { name: 'keras2-h5-nested', file: { format: 'h5', dialect: 'keras2', api: 'Sequential', nested: true, customNames: true }, extra: [], args: ['--normalisation', 'none', '--threshold', '0.4'] },
  { name: 'keras3-keras-lstm', file: { format: 'keras', dialect: 'keras3', api: 'Sequential' }, spec: lstm, args: ['--normalisation', 'min-max', '--data'] },
  { name: 'keras3-h5-lstm', file: { format: 'h5', dialect: 'keras3', api: 'Functional' }, spec: lstm, args: ['--normalisation', 'none', '--threshold', '1'] },
  { name: 'keras2-h5-lstm', file: { format: 'h5', dialect: 'keras2', api: 'Sequential', customNames: true }, spec: lstm, args: ['--normalisation', 'standard', '--data'] },
] as const satisfies readonly { name: string; file: Omit<KerasFileOptions, 'scratch'>; extra?: readonly string[]; spec?: (seed: number) => AutoencoderSpec; args: readonly string[] }[];

// Each test imports in a process of its own and serves in another: they run side by side.
describe.concurrent('npm run import: Keras files served through both protocols, scored as an independent forward pass scores them', () => {
  it.for(cases)('$name', async (example, { expect }) => {
    const { name, file, args } = example;
    const spec = 'spec' in example ? example.spec(name.length) : randomAutoencoder(WIDTH, [6, 3], name.length, example.extra);
    const { code, stderr, stdout, out } = await importModel(name, spec, file, args.map((arg) => (arg === '--data' ? `--data=${dataFile}` : arg)));
    expect(code, stderr).toBe(0);
    const metadata = readMetadata(out);
    expect(metadata).toMatchObject({ name, signature: { inputs: [{ name: 'beat', shape: [-1, WIDTH] }] }, imported: { format: file.format } });
    const { normalisation } = metadata;
    expect(normalisation.method).toBe(args[1]);

    const server = await spawnServer({ MODEL_PATH: out });
    try {
      const rows = [data.rows[0]!, data.rows[3]!, data.rows[10]!];
      const expected = rows.map((row) => scoreByHand(spec, normalisation, row));
      const tfServing = await fetch(`${server.url}/v1/models/${name}:predict`, { method: 'POST', body: JSON.stringify({ instances: rows }) });
      expect(tfServing.status).toBe(200);
      const { predictions } = (await tfServing.json()) as { predictions: { reconstruction_error: number; is_anomaly: boolean }[] };
      const v2 = await fetch(`${server.url}/v2/models/${name}/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'beat', shape: [rows.length, WIDTH], datatype: 'FP32', data: rows.flat() }] }),
      });
      expect(v2.status).toBe(200);
      const { outputs } = (await v2.json()) as { outputs: { name: string; data: (number | boolean)[] }[] };
      const v2Scores = outputs.find((output) => output.name === 'reconstruction_error')!.data as number[];
      expected.forEach((score, i) => {
        expect(Math.abs(predictions[i]!.reconstruction_error - score)).toBeLessThan(1e-5);
        expect(predictions[i]!.is_anomaly).toBe(score > metadata.threshold.value);
        // V2 takes FP32 input: the rows rounded to float32 first, so compare within the same bound.
        expect(Math.abs(v2Scores[i]! - score)).toBeLessThan(1e-5);
      });
      // TF Serving's "explain" signature: the attribution of each instance in the input's shape (a window's, a list of steps).
      const explain = await fetch(`${server.url}/v1/models/${name}:predict`, { method: 'POST', body: JSON.stringify({ signature_name: 'explain', instances: rows }) });
      const explained = (await explain.json()) as { predictions: { attribution: unknown }[] };
      const shapeOf = (value: unknown): number[] => (Array.isArray(value) ? [value.length, ...shapeOf(value[0])] : []);
      expect(explained.predictions.map((p) => shapeOf(p.attribution))).toEqual(rows.map(() => metadata.signature.inputs[0].shape.slice(1)));
    } finally {
      await server.stop();
    }

    if ((args as readonly string[]).includes('--data')) {
      // The threshold by the default rule (anomalous rows are labelled), from independently computed scores.
      const scores = data.rows.map((row) => scoreByHand(spec, normalisation, row));
      const threshold = chooseThreshold('max-accuracy', {
        normal: scores.filter((_, i) => data.labels[i] === 1),
        anomalous: scores.filter((_, i) => data.labels[i] === 0),
      });
      expect(metadata.threshold.rule).toBe('max-accuracy');
      expect(Math.abs(metadata.threshold.value - threshold)).toBeLessThan(1e-5);
      // The calibration: the normal rows' scores, ascending, and the p_value output it makes possible.
      const normalScores = scores.filter((_, i) => data.labels[i] === 1).sort((a, b) => a - b);
      expect(metadata.calibration!.rows).toBe(normalScores.length);
      metadata.calibration!.scores.forEach((score, i) => expect(Math.abs(score - normalScores[i]!)).toBeLessThan(1e-5));
      expect(metadata.signature.outputs.map((o) => o.role)).toEqual(['score', 'verdict', 'reconstruction', 'attribution', 'p_value']);
      expect(metadata.evaluation?.rows).toBe(data.rows.length);
      expect(metadata.examples?.map((example) => example.name)).toEqual(['normal', 'anomalous']);
      expect(stdout).toMatch(/^accuracy\s+\d+\.\d\d%$/m);
      expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual(metadata.evaluation);
    }
  });

  it('a Keras 3 model saved as .keras and as .h5 imports to the same version', async ({ expect }) => {
    const spec = randomAutoencoder(WIDTH, [5], 11);
    const args = ['--normalisation', 'none', '--threshold', '0.2'];
    const [zip, h5] = await Promise.all([
      importModel('same-keras', spec, { format: 'keras', dialect: 'keras3', api: 'Functional' }, args),
      importModel('same-h5', spec, { format: 'h5', dialect: 'keras3', api: 'Functional' }, args),
    ]);
    expect(zip.code, zip.stderr).toBe(0);
    expect(h5.code, h5.stderr).toBe(0);
    expect(readMetadata(zip.out).version).toBe(readMetadata(h5.out).version);
  });

  it('--scaler: a fitted MinMaxScaler, StandardScaler or RobustScaler, as the line of Python in the docs writes it, scales as it did', async ({ expect }) => {
    expect(await readFile('docs/model.md', 'utf8')).toContain(SCALER_PYTHON);
    const spec = randomAutoencoder(WIDTH, [5], 17);
    const columns = (at: number) => Array.from({ length: WIDTH }, (_, i) => Math.round((at + i * 0.37) * 1000) / 1000);
    const scalers = {
      MinMaxScaler: [{ data_min_: columns(-2), data_max_: columns(3).map((v, i) => (i === 3 ? columns(-2)[3]! : v)), feature_range: [0, 1] }, (s: Record<string, number[]>) => ({ method: 'min-max-per-feature', min: s.data_min_, max: s.data_max_ })],
      StandardScaler: [{ mean_: columns(0.5), scale_: columns(1.5) }, (s: Record<string, number[]>) => ({ method: 'standard', mean: s.mean_, std: s.scale_ })],
      RobustScaler: [{ center_: columns(0.2), scale_: columns(2) }, (s: Record<string, number[]>) => ({ method: 'standard', mean: s.center_, std: s.scale_ })],
    } as const;
    await Promise.all(
      Object.entries(scalers).map(async ([scaler, [attributes, expected]]) => {
        const file = path.join(scratch, `${scaler}.json`);
        await writeFile(file, JSON.stringify({ scaler, ...attributes }));
        const result = await importModel(`scaler-${scaler}`, spec, { format: 'keras', dialect: 'keras3', api: 'Sequential' }, ['--scaler', file, '--threshold', '0.2']);
        expect(result.code, result.stderr).toBe(0);
        const metadata = readMetadata(result.out);
        expect(metadata.normalisation).toEqual(expected(attributes as unknown as Record<string, number[]>));
        const server = await spawnServer({ MODEL_PATH: result.out });
        try {
          const rows = [data.rows[1]!, data.rows[7]!];
          const answer = await fetch(`${server.url}/v1/models/scaler-${scaler}:predict`, { method: 'POST', body: JSON.stringify({ instances: rows }) });
          const { predictions } = (await answer.json()) as { predictions: { reconstruction_error: number }[] };
          rows.forEach((row, i) => expect(Math.abs(predictions[i]!.reconstruction_error - scoreByHand(spec, metadata.normalisation, row))).toBeLessThan(1e-5));
        } finally {
          await server.stop();
        }
      }),
    );
  });

  /** Imports a random autoencoder (of `seed`) with the test rows as --data, unlabelled: every row normal. */
  async function importOnUnlabelled(name: string, seed: number, args: readonly string[] = []) {
    const file = path.join(scratch, `${name}.csv`);
    await writeFile(file, data.rows.map((row) => row.join(',')).join('\n'));
    const spec = randomAutoencoder(WIDTH, [4], seed);
    const plainKeras = { format: 'keras', dialect: 'keras3', api: 'Sequential' } as const;
    return { spec, result: await importModel(name, spec, plainKeras, ['--normalisation', 'min-max', '--data', file, '--label-column', 'none', ...args]) };
  }

  it('unlabelled --data (--label-column none): mean+std of its scores, no evaluation', async ({ expect }) => {
    const { spec, result } = await importOnUnlabelled('unlabelled', 3);
    expect(result.code, result.stderr).toBe(0);
    const metadata = readMetadata(result.out);
    const scores = data.rows.map((row) => scoreByHand(spec, metadata.normalisation, row));
    expect(metadata.threshold.rule).toBe('mean+std');
    expect(Math.abs(metadata.threshold.value - chooseThreshold('mean+std', { normal: scores, anomalous: [] }))).toBeLessThan(1e-5);
    expect(metadata).not.toHaveProperty('evaluation');
    expect(metadata.calibration!.rows).toBe(data.rows.length);
  });

  it('--target-fpr: the threshold that leaves that share of --data\'s normal rows above it', async ({ expect }) => {
    const { spec, result } = await importOnUnlabelled('target-fpr', 5, ['--target-fpr', '0.1']);
    expect(result.code, result.stderr).toBe(0);
    const metadata = readMetadata(result.out);
    const scores = data.rows.map((row) => scoreByHand(spec, metadata.normalisation, row)).sort((a, b) => a - b);
    const above = (threshold: number) => scores.filter((score) => score > threshold + 1e-6).length / scores.length;
    expect(metadata.threshold).toMatchObject({ rule: 'target-fpr', targetFpr: 0.1 });
    expect(above(metadata.threshold.value)).toBeLessThanOrEqual(0.1);
    expect(above(metadata.threshold.value - 2e-5)).toBeGreaterThan(0.1 - 1 / scores.length);
    expect(metadata.normalisation).toEqual({ method: 'min-max', min: Math.min(...data.rows.flat()), max: Math.max(...data.rows.flat()) });
  });
});

describe.concurrent('what cannot be imported: a message naming the file, layer and type, exit code 2, nothing written', () => {
  const plain = { format: 'keras', dialect: 'keras3', api: 'Functional' } as const;
  type Edit = NonNullable<KerasFileOptions['editConfig']>;
  const layers = (config: Record<string, unknown>) => (config.config as { layers: Record<string, unknown>[] }).layers;
  const failures: [title: string, file: Omit<KerasFileOptions, 'scratch'>, args: string[], message: RegExp][] = [
    [
      'a layer TensorFlow.js does not have',
      {
        ...plain,
        editConfig: ((config) => {
          layers(config)[1]!.class_name = 'MultiHeadAttention';
          return config;
        }) satisfies Edit,
      },
      [],
      /model\.keras: layer "dense" \(MultiHeadAttention\): TensorFlow\.js has no MultiHeadAttention layer/,
    ],
    [
      'an option TensorFlow.js lacks (GRU reset_after=True, Keras 3 default)',
      {
        ...plain,
        editConfig: ((config) => {
          layers(config)[1] = { module: 'keras.layers', class_name: 'GRU', config: { name: 'gru', units: 2, reset_after: true }, registered_name: null, name: 'gru', inbound_nodes: [] };
          return config;
        }) satisfies Edit,
      },
      [],
      /model\.keras: layer "gru" \(GRU\): TensorFlow\.js cannot build it: GRUCell does not support reset_after parameter set to true/,
    ],
    [
      'an input that is not a flat row',
      {
        ...plain,
        editConfig: ((config) => {
          (layers(config)[0]!.config as Record<string, unknown>).batch_shape = [null, WIDTH, 1];
          return config;
        }) satisfies Edit,
      },
      [],
      /the model maps \[\[null,12,1\]\] to .*the model must take one input of shape \[batch, width\]/,
    ],
    [
      'a weight of the wrong shape',
      {
        ...plain,
        editConfig: ((config) => {
          (layers(config)[1]!.config as Record<string, unknown>).units = 7;
          return config;
        }) satisfies Edit,
      },
      [],
      /layer "dense" \(Dense\): weight "kernel" \(\/layers\/dense\/vars\/0\) has shape \[12,6\]; the layer needs \[12,7\]/,
    ],
    [
      'mixed precision',
      {
        ...plain,
        editConfig: ((config) => {
          (layers(config)[1]!.config as Record<string, unknown>).dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'mixed_float16' } };
          return config;
        }) satisfies Edit,
      },
      [],
      /layer "dense" \(Dense\) uses dtype policy "mixed_float16"; TensorFlow\.js runs float32 only/,
    ],
    ['weights alone (model.save_weights)', { format: 'h5', dialect: 'keras2', api: 'Sequential', editConfig: () => undefined }, [], /model\.h5: no model_config attribute: this file holds weights alone/],
    ['an archive without config.json', { ...plain, editConfig: () => undefined }, [], /model\.keras: no config\.json in the archive/],
  ];
  it.for(failures)('%s', async ([title, file, args, message], { expect }) => {
    const result = await importModel(title.replace(/\W+/g, '-'), randomAutoencoder(WIDTH, [6], 1), file, ['--normalisation', 'none', '--threshold', '1', ...args]);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
    const siblings = await readdir(path.dirname(result.out));
    expect(siblings.filter((entry) => entry.startsWith('imported'))).toEqual([]);
  });

  it.for([
    ['a scaler of another class', { scaler: 'QuantileTransformer' }, /scaler "QuantileTransformer": one of MinMaxScaler, StandardScaler, RobustScaler is read/],
    ['a scaler of another width', { scaler: 'StandardScaler', mean_: [0, 1], scale_: [1, 1] }, /mean_ must be 12 numbers, one a feature of the model's input/],
    ['a MinMaxScaler to another range', { scaler: 'MinMaxScaler', data_min_: Array(WIDTH).fill(0), data_max_: Array(WIDTH).fill(1), feature_range: [-1, 1] }, /feature_range \[-1,1\]: only MinMaxScaler's default, \(0, 1\), is read/],
    ['a scaler that is not JSON', 'scale_=[1, 2]', /a-scaler-that-is-not-JSON\.json: not JSON/],
  ] as const)('%s', async ([title, scaler, message], { expect }) => {
    const file = path.join(scratch, `${title.replace(/\W+/g, '-')}.json`);
    await writeFile(file, typeof scaler === 'string' ? scaler : JSON.stringify(scaler));
    const result = await importModel(`scaler-fails-${title.replace(/\W+/g, '-')}`, randomAutoencoder(WIDTH, [6], 1), plain, ['--scaler', file, '--threshold', '1']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
  });

  it('a file that is not a Keras model', async ({ expect }) => {
    const result = await runImport([dataFile, '--out', path.join(scratch, 'not-keras'), '--name', 'x', '--normalisation', 'none', '--threshold', '1']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/rows\.csv: neither a \.keras archive nor an HDF5 \.h5 file/);
  });

  const usage: [title: string, args: string[], message: RegExp][] = [
    ['no --normalisation', ['--threshold', '1'], /--normalisation is required \(none, min-max, standard, min-max-per-feature\), or --scaler/],
    ['no threshold and no data', ['--normalisation', 'none'], /give --threshold X, or --data CSV/],
    ['min-max without its range or data', ['--normalisation', 'min-max', '--threshold', '1'], /--normalisation min-max needs --min and --max, or --data/],
    ['a statistic of another method', ['--normalisation', 'none', '--min', '0', '--threshold', '1'], /--min does not apply to --normalisation none/],
    ['--std of the wrong length', ['--normalisation', 'standard', '--mean', '0', '--std', '1,2,3', '--threshold', '1'], /--std has 3 values; the model's input has 12 features/],
    ['--target-fpr without data', ['--normalisation', 'none', '--target-fpr', '0.01'], /give --threshold X, or --data CSV to pick one by --target-fpr or --threshold-rule/],
    ['--target-fpr and --threshold', ['--normalisation', 'none', '--threshold', '1', '--target-fpr', '0.01'], /give one of --threshold, --threshold-rule and --target-fpr; got --threshold and --target-fpr/],
    ['--target-fpr finer than the data', ['--normalisation', 'none', '--data', 'UNLABELLED', '--label-column', 'none', '--target-fpr', '0.0001'], /--target-fpr 0\.0001 is finer than \d+ calibration rows can tell/],
    ['max-accuracy without anomalous rows', ['--normalisation', 'none', '--data', 'UNLABELLED', '--label-column', 'none', '--threshold-rule', 'max-accuracy'], /max-accuracy needs anomalous rows/],
  ];
  const unlabelled = () => path.join(scratch, 'usage.csv');
  beforeAll(() => writeFile(unlabelled(), data.rows.map((row) => row.join(',')).join('\n')));
  it.for(usage)('%s', async ([title, args, message], { expect }) => {
    const result = await importModel(`usage-${title.replace(/\W+/g, '-')}`, randomAutoencoder(WIDTH, [6], 1), plain, args.map((arg) => (arg === 'UNLABELLED' ? unlabelled() : arg)));
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
    expect(result.stderr).toContain('Usage: npm run import');
    await expect(readdir(result.out)).rejects.toThrow(/ENOENT/);
  });

  it('an --out folder that is not empty is left as it was', async ({ expect }) => {
    const dir = path.join(scratch, 'occupied');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'keep.txt'), 'mine');
    const modelFile = path.join(scratch, 'occupied.keras');
    await writeKerasModel(modelFile, randomAutoencoder(WIDTH, [6], 1), { ...plain, scratch: await mkdtemp(path.join(scratch, 'writer-')) });
    const result = await runImport([modelFile, '--out', dir, '--name', 'x', '--normalisation', 'none', '--threshold', '1']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/--out .*occupied is not empty/);
    expect(await readdir(dir)).toEqual(['keep.txt']);
    expect(await readFile(path.join(dir, 'keep.txt'), 'utf8')).toBe('mine');
  });
});

describe('docs/model.md', () => {
  it('lists exactly the layer types TensorFlow.js can build', async () => {
    const doc = await readFile('docs/model.md', 'utf8');
    const section = /<!-- supported-layers -->\n([\s\S]*?)\n<!-- \/supported-layers -->/.exec(doc)?.[1];
    expect(section, 'docs/model.md has a supported-layers list').toBeDefined();
    const listed = [...section!.matchAll(/`(\w+)`/g)].map((match) => match[1]);
    expect(listed).toEqual([...supportedLayers()].sort());
  });
});
