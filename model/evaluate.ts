import { Detector } from './detector.ts';
import { InputError, parseOptions, runCli } from '../lib/cli.ts';
import { BUNDLED_MODEL_DIR, writeMetadata } from './artifact.ts';
import { backendFromEnvironment, defaultDataPath } from './command-options.ts';
import { ECG5000_LAYOUT, readLabelledCsv } from './data.ts';
import { formatEvaluation, scoreRows, testSplitRows } from './evaluation.ts';
import { classificationMetrics, curves } from './classification-metrics.ts';
import { curvesSvg } from './curves-svg.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const USAGE = `Usage: npm run evaluate -- [options]

Loads a model as the server does, scores the test split recorded in its metadata.json, and prints a
table and one JSON line: accuracy, the false-positive rate and recall at the threshold, precision /
recall / F1 per class, ROC AUC, confusion matrix.

Options:
  --data FILE   the CSV the model was trained on (default: $ECG_CSV or ${defaultDataPath()}); its
                label column and normal label are the ones metadata.json records
  --model DIR   the model folder (default: ${BUNDLED_MODEL_DIR})
  --write       store the evaluation in the model's metadata.json
  --curves DIR  write the ROC and precision-recall curves there: curves.json (a point a distinct
                score: threshold, false-positive rate, recall, precision) and curves.svg
Environment: BACKEND=tensorflow|wasm|cpu forces a TensorFlow.js backend.
`;

await runCli('evaluate', USAGE, async (argv, logger) => {
  const options = parseOptions(argv, {
    data: { type: 'string', default: defaultDataPath() },
    model: { type: 'string', default: BUNDLED_MODEL_DIR },
    write: { type: 'boolean', default: false },
    curves: { type: 'string' },
  });
  const backend = await backendFromEnvironment(logger);
  // Before any work: a folder that cannot be made is said at once, not after the scoring.
  if (options.curves !== undefined) {
    await mkdir(options.curves, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`--curves ${options.curves}: cannot make the folder (${error.code ?? error.message})`);
    });
  }
  const detector = await Detector.load(options.model);
  const { labelColumn = ECG5000_LAYOUT.labelColumn, normalLabel = ECG5000_LAYOUT.normalLabel } = detector.metadata.split ?? {};
  const data = await readLabelledCsv(options.data, { labelColumn, normalLabel });
  const scored = scoreRows(detector, data, testSplitRows(detector, data, options.data));
  const evaluation = classificationMetrics(scored);
  detector.dispose();
  if (options.curves !== undefined) {
    const points = curves(scored);
    const { name, version } = detector.metadata;
    await writeFile(path.join(options.curves, 'curves.json'), JSON.stringify({ model: name, version, threshold: detector.threshold, testRows: scored.length, points }) + '\n');
    await writeFile(path.join(options.curves, 'curves.svg'), curvesSvg(points, detector.threshold, `ROC and precision-recall curves of ${name} (${version}) on its ${scored.length} test rows`));
    logger.info({ curves: options.curves, points: points.length }, 'curves written');
  }
  process.stdout.write(`${formatEvaluation(evaluation)}\n${JSON.stringify(evaluation)}\n`);
  if (options.write) {
    await writeMetadata(options.model, { ...detector.metadata, evaluation });
    logger.info({ model: options.model, backend }, 'evaluation written to metadata.json');
  }
});
