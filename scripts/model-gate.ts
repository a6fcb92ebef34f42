import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { ArtifactError, readMetadata, type Evaluation } from '../model/artifact.ts';
import { falsePositiveRateOf } from '../model/classification-metrics.ts';

const USAGE = `Usage: npm run gate -- DIR [--min-accuracy X] [--min-roc-auc X] [--min-recall X] [--max-fpr X]

Checks the evaluation recorded in DIR/metadata.json (npm run train's, evaluate --write's or import
--data's) against the minimums given, before a deploy: exit 0 when it meets every one, 2 when it
falls short (saying which figures) or records no evaluation. An option given as "" is not checked
(Cloud Build passes an unset substitution so).

  --min-accuracy X   the share of test rows classified right
  --min-roc-auc X    the area under the ROC curve
  --min-recall X     the share of anomalous test rows caught
  --max-fpr X        the largest share of normal test rows flagged
`;

/** Each bound: the option, what it bounds, and whether the figure must be at least (or at most) the bound. */
const BOUNDS = [
  { option: 'min-accuracy', figure: 'accuracy', of: (e: Evaluation) => e.accuracy, atLeast: true },
  { option: 'min-roc-auc', figure: 'ROC AUC', of: (e: Evaluation) => e.rocAuc, atLeast: true },
  { option: 'min-recall', figure: 'recall of the anomalous class', of: (e: Evaluation) => e.anomalous.recall, atLeast: true },
  {
    option: 'max-fpr',
    figure: 'false-positive rate',
    of: falsePositiveRateOf,
    atLeast: false,
  },
] as const;

await runCli('gate', USAGE, async (argv, logger) => {
  const { values, positionals } = parseCommandLine(argv, Object.fromEntries(BOUNDS.map(({ option }) => [option, { type: 'string' }])) as Record<(typeof BOUNDS)[number]['option'], { type: 'string' }>);
  if (positionals.length !== 1) throw new UsageError('name the model folder whose metadata.json to check');
  const [dir] = positionals as [string];
  const bounds = BOUNDS.flatMap((bound) => {
    const text = values[bound.option]?.trim();
    if (!text) return [];
    const limit = Number(text);
    if (!(limit >= 0 && limit <= 1)) throw new UsageError(`--${bound.option} must be a share from 0 to 1, got ${JSON.stringify(text)}`);
    return [{ ...bound, limit }];
  });
  const metadata = readMetadata(dir);
  const { evaluation } = metadata;
  if (!evaluation) {
    throw new ArtifactError(`${dir}: model ${metadata.name} (${metadata.version}) records no evaluation to gate on: evaluate it (npm run evaluate -- --write, or import with labelled --data), or turn the gate off`);
  }
  const short = bounds.filter(({ of, limit, atLeast }) => (atLeast ? !(of(evaluation) >= limit) : !(of(evaluation) <= limit)));
  const figures = Object.fromEntries(bounds.map(({ figure, of }) => [figure, of(evaluation)]));
  if (short.length > 0) {
    throw new ArtifactError(
      `model ${metadata.name} (${metadata.version}) falls short: ` +
        short.map(({ figure, of, limit, atLeast }) => `${figure} ${of(evaluation).toFixed(4)} is ${atLeast ? 'below' : 'above'} ${limit}`).join('; '),
    );
  }
  logger.info({ model: metadata.name, version: metadata.version, rows: evaluation.rows, ...figures }, 'the model meets the gate');
});
