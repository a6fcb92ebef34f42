import { Detector } from './detector.ts';
import { parseOptions, runCli } from '../lib/cli.ts';
import { BUNDLED_MODEL_DIR, writeMetadata } from './artifact.ts';
import { backendFromEnvironment, defaultDataPath } from './command-options.ts';
import { ECG5000_LAYOUT, readLabelledCsv } from './data.ts';
import { evaluateTestSplit, formatEvaluation } from './evaluation.ts';

const USAGE = `Usage: npm run evaluate -- [options]

Loads a model as the server does, scores the test split recorded in its metadata.json, and prints a
table and one JSON line: accuracy, precision / recall / F1 per class, ROC AUC, confusion matrix.

Options:
  --data FILE   the CSV the model was trained on (default: $ECG_CSV or ${defaultDataPath()}); its
                label column and normal label are the ones metadata.json records
  --model DIR   the model folder (default: ${BUNDLED_MODEL_DIR})
  --write       store the evaluation in the model's metadata.json
Environment: BACKEND=tensorflow|wasm|cpu forces a TensorFlow.js backend.
`;

await runCli('evaluate', USAGE, async (argv, logger) => {
  const options = parseOptions(argv, {
    data: { type: 'string', default: defaultDataPath() },
    model: { type: 'string', default: BUNDLED_MODEL_DIR },
    write: { type: 'boolean', default: false },
  });
  const backend = await backendFromEnvironment(logger);
  const detector = await Detector.load(options.model);
  const { labelColumn = ECG5000_LAYOUT.labelColumn, normalLabel = ECG5000_LAYOUT.normalLabel } = detector.metadata.split ?? {};
  const evaluation = evaluateTestSplit(detector, await readLabelledCsv(options.data, { labelColumn, normalLabel }), options.data);
  detector.dispose();
  process.stdout.write(`${formatEvaluation(evaluation)}\n${JSON.stringify(evaluation)}\n`);
  if (options.write) {
    await writeMetadata(options.model, { ...detector.metadata, evaluation });
    logger.info({ model: options.model, backend }, 'evaluation written to metadata.json');
  }
});
