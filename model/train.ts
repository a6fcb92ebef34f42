import * as tf from '@tensorflow/tfjs';
import { Detector, normaliser, reconstructionErrors } from './detector.ts';
import { artifactsOf, BUNDLED_MODEL_DIR, contentVersion, signatureFor, writeArtifact, writeMetadata, type ModelMetadata, type ScoreFunction } from './artifact.ts';
import { buildAutoencoder } from './autoencoder.ts';
import { numberOption, parseOptions, runCli, UsageError } from '../lib/cli.ts';
import { backendFromEnvironment, checkNameOptions, defaultDataPath, labelLayoutOption, SCORE_USAGE, scoreOption } from './command-options.ts';
import { classificationMetrics } from './classification-metrics.ts';
import { classExamples, ECG5000_LAYOUT, fitMinMax, isAnomalous, readLabelledCsv, seededRandom, shuffled, stratifiedSplit, type LabelledData } from './data.ts';
import { evaluateTestSplit } from './evaluation.ts';
import { checkTargetFpr, chooseThreshold, fprThreshold, isThresholdRule, targetFprOption, THRESHOLD_RULES, type ThresholdRule } from './threshold.ts';
import { Calibration, calibrationRecord } from './calibration.ts';
import type { Logger } from '../lib/logger.ts';
import type { Normalisation } from './artifact.ts';

const DEFAULTS = {
  name: 'ecg-autoencoder',
  inputName: 'beat',
  labelColumn: 'last',
  normalLabel: String(ECG5000_LAYOUT.normalLabel),
  epochs: '150',
  batchSize: '32',
  learningRate: '0.0003',
  seed: '42',
  testFraction: '0.2',
  calibrationFraction: '0.2',
  targetFpr: '0.03',
} as const;

const USAGE = `Usage: npm run train -- [options]

Trains an autoencoder on the normal rows of a seeded, stratified training split of a CSV of numbers
with a label column, less a share of them held out to calibrate its scores, and writes model.json,
weights.bin and metadata.json (with the calibration and the test-split evaluation) into the output
folder. The defaults are ECG5000's: 140 samples, then the label.

Options:
  --data FILE            the CSV to train on (default: $ECG_CSV or ${defaultDataPath()}); no header,
                         every column but the label is a value of the input
  --label-column N       the label's column, 1-based, or "last" (default: ${DEFAULTS.labelColumn})
  --normal-label X       the label of a normal row; any other is anomalous (default: ${DEFAULTS.normalLabel})
  --out DIR              where to write the model (default: ${BUNDLED_MODEL_DIR})
  --name NAME            the model's name (default: ${DEFAULTS.name})
  --input-name NAME      the input's name in both protocols (default: ${DEFAULTS.inputName})
  --epochs N             training epochs (default: ${DEFAULTS.epochs})
  --batch-size N         rows per training step (default: ${DEFAULTS.batchSize})
  --learning-rate X      Adam's learning rate (default: ${DEFAULTS.learningRate})
  --seed N               seeds the split, the weights and the shuffling (default: ${DEFAULTS.seed})
  --test-fraction X      share of each label held out for evaluation (default: ${DEFAULTS.testFraction})
  --calibration-fraction X  share of the training part's normal rows held out of training, whose
                         scores calibrate p-values, drift tests and --target-fpr (default: ${DEFAULTS.calibrationFraction})
  --target-fpr R         the threshold that calls a share R of the calibration's normal rows
                         anomalous: their false-positive rate (default: ${DEFAULTS.targetFpr}, three in a hundred)
  --threshold-rule RULE  instead of --target-fpr: ${Object.keys(THRESHOLD_RULES).join(' | ')}
${SCORE_USAGE}
  --validate X           model selection: train on the training part less a stratified share X of
                         it, print every threshold rule's metrics on that share, and write nothing
Environment: BACKEND=tensorflow|wasm|cpu forces a TensorFlow.js backend; LOG_LEVEL sets the log level.
`;

interface Hyperparameters {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
}

interface TrainedModel {
  readonly model: tf.LayersModel;
  readonly score: ScoreFunction;
  readonly normalisation: Normalisation;
  readonly normalRows: number[][];
  readonly anomalousRows: number[][];
  readonly finalLoss: number;
  /** The threshold each rule picks from these beats' scores. */
  readonly thresholds: Record<ThresholdRule, number>;
}

/**
 * Fits the normalisation to some rows of the data, trains the autoencoder on the normal ones, and
 * lets each threshold rule pick a threshold from their scores.
 */
async function trainOn(data: LabelledData, rows: readonly number[], hyper: Hyperparameters, score: ScoreFunction, logger: Logger): Promise<TrainedModel> {
  const { width } = data;
  const values = rows.map((row) => data.rows[row]!);
  const normalRows = values.filter((_, i) => !isAnomalous(data, rows[i]!));
  const anomalousRows = values.filter((_, i) => isAnomalous(data, rows[i]!));
  if (normalRows.length === 0) throw new UsageError('the training part has no normal rows to learn from');
  const normalisation = fitMinMax(values);
  logger.info({ rows: rows.length, normalRows: normalRows.length, width, ...hyper }, 'training on the normal rows of the training part');

  const model = buildAutoencoder({ inputLength: width, learningRate: hyper.learningRate, seed: hyper.seed, loss: score });
  const normalise = normaliser(normalisation, [width]);
  const normalised = normalise(normalRows);
  const random = seededRandom(hyper.seed);
  const order = normalRows.map((_, i) => i);
  let finalLoss = NaN;
  for (let epoch = 1; epoch <= hyper.epochs; epoch++) {
    // A seeded shuffle each epoch (fit's own shuffle uses Math.random), so training is repeatable.
    const epochRows = tf.tidy(() => tf.gather(tf.tensor2d(normalised, [normalRows.length, width]), shuffled(order, random)));
    const history = await model.fit(epochRows, epochRows, { epochs: 1, batchSize: hyper.batchSize, shuffle: false, verbose: 0 });
    epochRows.dispose();
    finalLoss = history.history.loss![0] as number;
    logger.info({ epoch, epochs: hyper.epochs, loss: Number(finalLoss.toFixed(6)) }, 'epoch');
  }

  const scores = {
    normal: reconstructionErrors(model, normalised, score),
    anomalous: reconstructionErrors(model, normalise(anomalousRows), score),
  };
  const rules = Object.keys(THRESHOLD_RULES) as ThresholdRule[];
  const thresholds = Object.fromEntries(rules.map((rule) => [rule, chooseThreshold(rule, scores)])) as Record<ThresholdRule, number>;
  return { model, score, normalisation, normalRows, anomalousRows, finalLoss, thresholds };
}

/** Model selection on the training part only: every rule's metrics on a held-out share of it. */
async function validate(data: LabelledData, trainRows: number[], share: number, hyper: Hyperparameters, score: ScoreFunction, logger: Logger) {
  const inner = stratifiedSplit(
    trainRows.map((row) => data.labels[row]!),
    hyper.seed,
    share,
  );
  const fitRows = inner.train.map((i) => trainRows[i]!);
  const heldOut = inner.test.map((i) => trainRows[i]!);
  const trained = await trainOn(data, fitRows, hyper, score, logger);
  const errors = reconstructionErrors(trained.model, normaliser(trained.normalisation, [data.width])(heldOut.map((row) => data.rows[row]!)), trained.score);
  trained.model.dispose();
  for (const [rule, threshold] of Object.entries(trained.thresholds)) {
    const evaluation = classificationMetrics(
      errors.map((score, i) => ({ score, predictedAnomalous: score > threshold, anomalous: isAnomalous(data, heldOut[i]!) })),
    );
    process.stdout.write(JSON.stringify({ validation: share, ...hyper, rule, threshold, evaluation }) + '\n');
  }
}

await runCli('train', USAGE, async (argv, logger) => {
  const options = parseOptions(argv, {
    data: { type: 'string', default: defaultDataPath() },
    out: { type: 'string', default: BUNDLED_MODEL_DIR },
    name: { type: 'string', default: DEFAULTS.name },
    'input-name': { type: 'string', default: DEFAULTS.inputName },
    'label-column': { type: 'string', default: DEFAULTS.labelColumn },
    'normal-label': { type: 'string', default: DEFAULTS.normalLabel },
    epochs: { type: 'string', default: DEFAULTS.epochs },
    'batch-size': { type: 'string', default: DEFAULTS.batchSize },
    'learning-rate': { type: 'string', default: DEFAULTS.learningRate },
    seed: { type: 'string', default: DEFAULTS.seed },
    'test-fraction': { type: 'string', default: DEFAULTS.testFraction },
    'calibration-fraction': { type: 'string', default: DEFAULTS.calibrationFraction },
    'threshold-rule': { type: 'string' },
    'target-fpr': { type: 'string' },
    score: { type: 'string' },
    validate: { type: 'string' },
  });
  const positiveInteger = (n: number) => Number.isInteger(n) && n > 0;
  const fraction = (n: number) => n > 0 && n < 1;
  const hyper: Hyperparameters = {
    epochs: numberOption('epochs', options.epochs, positiveInteger, 'a positive integer'),
    batchSize: numberOption('batch-size', options['batch-size'], positiveInteger, 'a positive integer'),
    learningRate: numberOption('learning-rate', options['learning-rate'], (n) => n > 0, 'a positive number'),
    seed: numberOption('seed', options.seed, Number.isSafeInteger, 'an integer'),
  };
  const testFraction = numberOption('test-fraction', options['test-fraction'], fraction, 'between 0 and 1');
  const score = scoreOption(options.score);
  const calibrationFraction = numberOption('calibration-fraction', options['calibration-fraction'], fraction, 'between 0 and 1');
  if (options['target-fpr'] !== undefined && options['threshold-rule'] !== undefined) throw new UsageError('give --threshold-rule or --target-fpr, not both');
  const thresholdRule = options['threshold-rule'];
  const targetFpr = targetFprOption(options['target-fpr'] ?? DEFAULTS.targetFpr);
  if (thresholdRule !== undefined && !isThresholdRule(thresholdRule)) {
    throw new UsageError(`--threshold-rule must be one of ${Object.keys(THRESHOLD_RULES).join(', ')}, got ${JSON.stringify(thresholdRule)}`);
  }
  const { labelColumn, normalLabel } = labelLayoutOption(options, { unlabelled: false });
  checkNameOptions(options, ['name', 'input-name']);
  const dataFile = options.data;
  const outDir = options.out;

  const backend = await backendFromEnvironment(logger);
  const data = await readLabelledCsv(dataFile, { labelColumn, normalLabel });
  const split = stratifiedSplit(data.labels, hyper.seed, testFraction);
  logger.info({ backend, data: dataFile, rows: data.rows.length, width: data.width, trainRows: split.train.length, testRows: split.test.length }, 'split');
  if (options.validate !== undefined) {
    await validate(data, split.train, numberOption('validate', options.validate, fraction, 'between 0 and 1'), hyper, score, logger);
    return;
  }

  // The calibration rows: a seeded share of the training part's normal rows, never trained on.
  const normalTrain = split.train.filter((row) => !isAnomalous(data, row));
  const held = stratifiedSplit(normalTrain.map(() => 0), hyper.seed, calibrationFraction).test.map((i) => normalTrain[i]!);
  if (held.length === 0) throw new UsageError(`--calibration-fraction ${calibrationFraction} of ${normalTrain.length} normal training rows holds out none`);
  // Before training, so that a rate the calibration cannot resolve costs no training run.
  if (thresholdRule === undefined) checkTargetFpr(targetFpr, held.length);
  const heldOut = new Set(held);
  const trained = await trainOn(data, split.train.filter((row) => !heldOut.has(row)), hyper, score, logger);
  const calibrationScores = reconstructionErrors(trained.model, normaliser(trained.normalisation, [data.width])(held.map((row) => data.rows[row]!)), score);
  const calibration = calibrationRecord(calibrationScores, `the scores of ${held.length} normal rows of the training part (a share ${calibrationFraction}, seed ${hyper.seed}) held out of training`);
  const threshold =
    thresholdRule === undefined
      ? fprThreshold(new Calibration(calibration), targetFpr)
      : { value: trained.thresholds[thresholdRule], rule: thresholdRule, description: THRESHOLD_RULES[thresholdRule] };
  logger.info({ ...threshold, calibrationRows: calibration.rows }, 'threshold');
  const artifacts = await artifactsOf(trained.model);
  trained.model.dispose();
  const metadata: ModelMetadata = {
    name: options.name,
    version: '',
    signature: signatureFor(data.width, { input: options['input-name'] }, true),
    normalisation: trained.normalisation,
    score,
    threshold,
    calibration,
    training: { ...hyper, rows: trained.normalRows.length, finalLoss: trained.finalLoss, backend },
    split: {
      seed: hyper.seed,
      testFraction,
      calibrationFraction,
      stratifiedBy: 'label',
      ...(labelColumn === ECG5000_LAYOUT.labelColumn && normalLabel === ECG5000_LAYOUT.normalLabel ? {} : { labelColumn, normalLabel }),
      dataSha256: data.sha256,
      dataRows: data.rows.length,
      trainRows: split.train.length,
      testRowIndices: split.test,
    },
    // One mean row per class of the training part, for demos and load tests.
    examples: classExamples(data, split.train),
  };
  metadata.version = await contentVersion(artifacts, metadata);
  await writeArtifact(outDir, { artifacts, metadata });

  // Evaluate the files as written, loaded the way the server loads them.
  const detector = await Detector.load(outDir);
  const evaluation = evaluateTestSplit(detector, data, dataFile);
  detector.dispose();
  await writeMetadata(outDir, { ...metadata, evaluation });
  logger.info({ out: outDir, version: metadata.version, evaluation }, 'model written');
});
