import { readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { artifactsOf, contentVersion, inputOf, type InstanceDims, type ModelMetadata, type Normalisation, NORMALISATION_METHODS, signatureFor, writeArtifact, writeMetadata } from './artifact.ts';
import { numberOption, parseCommandLine, removeIfInterrupted, runCli, UsageError } from '../lib/cli.ts';
import { backendFromEnvironment, checkNameOptions, labelLayoutOption, SCORE_USAGE, scoreOption } from './command-options.ts';
import { classExamples, DataFileError, ECG5000_LAYOUT, fitMinMax, fitMinMaxPerFeature, fitStandard, isAnomalous, readLabelledCsv } from './data.ts';
import { Detector, normaliser, reconstructionErrors } from './detector.ts';
import { evaluateRows, formatEvaluation } from './evaluation.ts';
import { buildModel, DEFAULT_MAX_PARAMETERS, readKerasFile } from './keras.ts';
import { readScaler, SCALERS } from './scaler.ts';
import { chooseThreshold, fprThreshold, isThresholdRule, targetFprOption, THRESHOLD_RULES, type ThresholdRule } from './threshold.ts';
import { Calibration, calibrationRecord } from './calibration.ts';

const DEFAULTS = { inputName: 'beat', labelColumn: 'last', normalLabel: String(ECG5000_LAYOUT.normalLabel) } as const;

const USAGE = `Usage: npm run import -- FILE --out DIR --name NAME --normalisation METHOD (--threshold X | --data CSV) [options]

Reads a Keras model saved in Python by model.save("autoencoder.keras") (Keras 3) or
model.save("autoencoder.h5") (Keras 2, or Keras 3's legacy format), Sequential or Functional, and
writes a folder the server serves (MODEL_PATH=DIR npm start). No Python and no converter are needed.
The model must take rows of one width, [batch, width], and reconstruct them in the same shape.

What the file does not hold, give here:
  --normalisation none | min-max | standard | min-max-per-feature
                         how the rows were scaled for training: not at all, by one global min and
                         max, each feature by its mean and standard deviation (StandardScaler), or
                         each feature by its own min and max (MinMaxScaler)
  --scaler FILE          instead of --normalisation: the fitted scikit-learn scaler as JSON
                         (${Object.keys(SCALERS).join(', ')}; docs/model.md has the line of Python that writes it)
  --min X --max Y        min-max's range, or min-max-per-feature's lists (default: from --data)
  --mean LIST --std LIST standard's statistics, comma-separated, one a feature or one for all
                         (default: each column's mean and standard deviation in --data)
  --threshold X          the reconstruction error above which a row is anomalous, or:
  --data CSV             rows as the model sees them before scaling (no header), to compute what is
                         not given: the statistics, the threshold by --threshold-rule, example rows;
                         the calibration (p-values, drift tests) from its normal rows, which should
                         be rows the model was not trained on; with anomalous rows labelled, the
                         model's evaluation on them (printed, and kept in metadata.json)
  --threshold-rule RULE  ${Object.keys(THRESHOLD_RULES).join(' | ')} (default: max-accuracy when
                         --data has anomalous rows, else mean+std)
  --target-fpr R         instead of a rule: the threshold that calls a share R of --data's normal
                         rows anomalous (e.g. 0.01 for one in a hundred)
${SCORE_USAGE}; the threshold is on its scale
  --label-column N       --data's label column, 1-based, "last", or "none" when it has no labels
                         (every row normal) (default: ${DEFAULTS.labelColumn})
  --normal-label X       the label of a normal row; any other is anomalous (default: ${DEFAULTS.normalLabel})

Options:
  --out DIR              the folder to write; it must not exist, or be empty
  --name NAME            the model's name in URLs
  --input-name NAME      the input's name in both protocols (default: ${DEFAULTS.inputName})
  --max-parameters N     the most weight values the file may hold, all layers together; a file past
                         it is refused before it is read (default: ${DEFAULT_MAX_PARAMETERS.toLocaleString('en')})
Exit codes: 0 written; 2 bad arguments, an unreadable or unsupported model file, or bad data (with a
message that says which), and nothing is written.
Environment: BACKEND=tensorflow|wasm|cpu forces a TensorFlow.js backend; LOG_LEVEL sets the log level.
`;

/** A comma-separated list of numbers for `width` features: one each, or one for all. */
function featureList(option: string, value: string, width: number, check: (n: number) => boolean, expected: string): number[] {
  const values = value.split(',').map((item) => numberOption(option, item, check, `a comma-separated list of ${expected}`));
  if (values.length === 1) return Array<number>(width).fill(values[0]!);
  if (values.length !== width) throw new UsageError(`--${option} has ${values.length} values; the model's input has ${width} features (give ${width}, or one for all)`);
  return values;
}

interface NormalisationOptions {
  readonly normalisation?: string;
  readonly min?: string;
  readonly max?: string;
  readonly mean?: string;
  readonly std?: string;
}

/**
 * The normalisation the options give, with what they leave out computed from the data: `rows` of
 * `width` features (a window model's steps, each a row of its features).
 */
function normalisationFrom(options: NormalisationOptions, width: number, data: readonly number[][] | undefined): Normalisation {
  const method = options.normalisation;
  const given = (['min', 'max', 'mean', 'std'] as const).filter((key) => options[key] !== undefined);
  const only = (keys: readonly string[]) => {
    const stray = given.find((key) => !keys.includes(key));
    if (stray) throw new UsageError(`--${stray} does not apply to --normalisation ${method}`);
    if (given.length > 0 && given.length < keys.length) throw new UsageError(`give ${keys.map((key) => `--${key}`).join(' and ')} together, or neither (to compute them from --data)`);
    if (given.length === 0 && keys.length > 0 && !data) throw new UsageError(`--normalisation ${method} needs ${keys.map((key) => `--${key}`).join(' and ')}, or --data to compute them from`);
    return given.length > 0;
  };
  switch (method) {
    case 'none':
      only([]);
      return { method };
    case 'min-max': {
      if (!only(['min', 'max'])) return fitMinMax(data!);
      const min = numberOption('min', options.min, Number.isFinite, 'a number');
      const max = numberOption('max', options.max, (n) => n > min, `a number greater than --min (${min})`);
      return { method, min, max };
    }
    case 'standard':
      if (!only(['mean', 'std'])) return fitStandard(data!);
      return {
        method,
        mean: featureList('mean', options.mean!, width, Number.isFinite, 'numbers'),
        std: featureList('std', options.std!, width, (n) => n > 0, 'positive numbers'),
      };
    case 'min-max-per-feature': {
      if (!only(['min', 'max'])) return fitMinMaxPerFeature(data!);
      const min = featureList('min', options.min!, width, Number.isFinite, 'numbers');
      const max = featureList('max', options.max!, width, Number.isFinite, 'numbers');
      if (max.some((value, i) => value < min[i]!)) throw new UsageError('--max must be at least --min, feature by feature');
      return { method, min, max };
    }
    default:
      throw new UsageError(`--normalisation must be one of ${NORMALISATION_METHODS.join(', ')}: how the rows were scaled for training; got ${JSON.stringify(method)}`);
  }
}

/** Checks --out before any work: a new or empty folder, so that nothing of the user's is replaced. */
async function checkOut(out: string): Promise<void> {
  const entries = await readdir(out).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new UsageError(`--out ${out}: ${error.code === 'ENOTDIR' ? 'a file, not a folder' : error.message}`);
  });
  if (entries.length > 0) throw new UsageError(`--out ${out} is not empty: give a new folder (the import never replaces files)`);
}

await runCli('import', USAGE, async (argv, logger) => {
  const { values: options, positionals } = parseCommandLine(argv, {
    out: { type: 'string' },
    name: { type: 'string' },
    'input-name': { type: 'string', default: DEFAULTS.inputName },
    normalisation: { type: 'string' },
    min: { type: 'string' },
    max: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    threshold: { type: 'string' },
    'threshold-rule': { type: 'string' },
    'target-fpr': { type: 'string' },
    data: { type: 'string' },
    'label-column': { type: 'string', default: DEFAULTS.labelColumn },
    'normal-label': { type: 'string', default: DEFAULTS.normalLabel },
    'max-parameters': { type: 'string', default: String(DEFAULT_MAX_PARAMETERS) },
    score: { type: 'string' },
    scaler: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the Keras model file to import' : `one model file at a time; got ${positionals.join(', ')}`);
  const [file] = positionals as [string];
  const { out, name } = options;
  if (out === undefined) throw new UsageError('--out DIR is required: the folder to write the model into');
  if (name === undefined) throw new UsageError('--name NAME is required: the model\'s name in URLs');
  checkNameOptions(options, ['name', 'input-name']);
  if (options.normalisation === undefined && options.scaler === undefined) {
    throw new UsageError(`--normalisation is required (${NORMALISATION_METHODS.join(', ')}), or --scaler: the file does not record how the rows were scaled for training`);
  }
  if (options.normalisation !== undefined && options.scaler !== undefined) throw new UsageError('give --normalisation or --scaler, not both: the scaler says how the rows were scaled');
  const stray = (['min', 'max', 'mean', 'std'] as const).find((key) => options.scaler !== undefined && options[key] !== undefined);
  if (stray) throw new UsageError(`--${stray} does not apply with --scaler: the scaler holds its statistics`);
  const rule = options['threshold-rule'];
  if (rule !== undefined && !isThresholdRule(rule)) throw new UsageError(`--threshold-rule must be one of ${Object.keys(THRESHOLD_RULES).join(', ')}, got ${JSON.stringify(rule)}`);
  const thresholdOptions = (['threshold', 'threshold-rule', 'target-fpr'] as const).filter((key) => options[key] !== undefined);
  if (thresholdOptions.length > 1) throw new UsageError(`give one of --threshold, --threshold-rule and --target-fpr; got ${thresholdOptions.map((key) => `--${key}`).join(' and ')}`);
  const targetFpr = options['target-fpr'] === undefined ? undefined : targetFprOption(options['target-fpr']);
  if (options.threshold === undefined && options.data === undefined) {
    throw new UsageError('the file does not record the anomaly threshold: give --threshold X, or --data CSV to pick one by --target-fpr or --threshold-rule');
  }
  const layout = labelLayoutOption(options, { unlabelled: true });
  const score = scoreOption(options.score);
  const maxParameters = numberOption('max-parameters', options['max-parameters'], (n) => Number.isSafeInteger(n) && n > 0, 'a whole number above 0');
  await checkOut(out);

  const backend = await backendFromEnvironment(logger);
  const keras = await readKerasFile(file, { maxParameters });
  const { model, leftOut } = await buildModel(keras, file);
  // Regularizers shape training, not scores.
  if (leftOut.length > 0) logger.info({ leftOut }, 'left out what only training uses');
  try {
    const dims = model.inputs[0]!.shape.slice(1) as InstanceDims;
    const { width, features } = inputOf(signatureFor(dims, { input: options['input-name'] }, false));
    logger.info({ file, format: keras.format, kerasVersion: keras.kerasVersion, layers: model.layers.length, shape: dims, backend }, 'model read');

    const data = options.data === undefined ? undefined : await readLabelledCsv(options.data, layout);
    if (data && data.width !== width) {
      throw new DataFileError(`${options.data}: rows have ${data.width} values; the model's input has ${width}${dims.length > 1 ? ` (a window of ${dims.join(' × ')}, its steps one after the other)` : ''}`);
    }
    // A statistic per feature is over every step of every window.
    const featureRows = data?.rows.flatMap((row) => Array.from({ length: width / features }, (_, step) => row.slice(step * features, (step + 1) * features)));
    const normalisation = options.scaler === undefined ? normalisationFrom(options, features, featureRows) : await readScaler(options.scaler, features);
    const rows = data?.rows.map((_, row) => row) ?? [];
    const anomalousRows = data ? rows.filter((row) => isAnomalous(data, row)) : [];

    const errors = data ? reconstructionErrors(model, normaliser(normalisation, dims)(data.rows), score) : [];
    const scores = { normal: errors.filter((_, row) => !isAnomalous(data!, row)), anomalous: errors.filter((_, row) => isAnomalous(data!, row)) };
    const calibration = scores.normal.length > 0 ? calibrationRecord(scores.normal, `the scores of the ${scores.normal.length} normal rows of ${path.basename(options.data!)}`) : undefined;
    let threshold: ModelMetadata['threshold'];
    if (options.threshold !== undefined) {
      threshold = { value: numberOption('threshold', options.threshold, (n) => n >= 0, 'a number of 0 or more') };
    } else if (targetFpr !== undefined) {
      if (!calibration) throw new UsageError(`--target-fpr needs normal rows in --data, and ${options.data} has none (label column ${layout.labelColumn}, normal label ${layout.normalLabel})`);
      threshold = fprThreshold(new Calibration(calibration), targetFpr);
    } else {
      const chosen: ThresholdRule = (rule as ThresholdRule | undefined) ?? (anomalousRows.length > 0 ? 'max-accuracy' : 'mean+std');
      if (chosen === 'max-accuracy' && anomalousRows.length === 0) {
        throw new UsageError(`--threshold-rule max-accuracy needs anomalous rows in --data, and ${options.data} has none (label column ${layout.labelColumn}, normal label ${layout.normalLabel}); use mean+std`);
      }
      threshold = { value: chooseThreshold(chosen, scores), rule: chosen, description: THRESHOLD_RULES[chosen] };
    }
    logger.info({ normalisation: normalisation.method, threshold: threshold.value, rule: threshold.rule, calibrationRows: calibration?.rows }, 'normalisation and threshold');

    const artifacts = await artifactsOf(model);
    const metadata: ModelMetadata = {
      name,
      version: '',
      signature: signatureFor(dims, { input: options['input-name'] }, calibration !== undefined),
      normalisation,
      score,
      threshold,
      ...(calibration && { calibration }),
      imported: {
        file: path.basename(file),
        format: keras.format,
        ...(keras.kerasVersion === undefined ? {} : { kerasVersion: keras.kerasVersion }),
        sha256: keras.sha256,
        ...(data ? { data: { file: path.basename(options.data!), sha256: data.sha256, rows: data.rows.length } } : {}),
      },
      ...(data ? { examples: classExamples(data, rows) } : {}),
    };
    metadata.version = await contentVersion(artifacts, metadata);

    // Written beside --out and moved into place when complete: a failure leaves nothing half-written.
    const partial = `${path.resolve(out)}.partial-${process.pid}`;
    const done = removeIfInterrupted(partial);
    try {
      await writeArtifact(partial, { artifacts, metadata });
      // The files as written, loaded the way the server loads them.
      const detector = await Detector.load(partial);
      if (data && anomalousRows.length > 0 && anomalousRows.length < rows.length) {
        const evaluation = evaluateRows(detector, data, rows);
        await writeMetadata(partial, { ...metadata, evaluation });
        process.stdout.write(`Evaluation on ${options.data} (the rows the threshold was picked from, when it was):\n${formatEvaluation(evaluation)}\n${JSON.stringify(evaluation)}\n`);
      }
      detector.dispose();
      // Empty, as checkOut found it: rmdir refuses if anything has appeared in it since.
      await rmdir(out).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await rename(partial, out);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      throw error;
    } finally {
      done();
    }
    logger.info({ out, name, version: metadata.version, width }, 'model imported');
  } finally {
    model.dispose();
  }
});
