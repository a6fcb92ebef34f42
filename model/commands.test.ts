import type { CurvePoint } from './classification-metrics.ts';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataSchema, type ModelMetadata } from './artifact.ts';
import { loggedError, logLines, runCommand } from '../test/command.ts';
import { describeWithEcgData, ECG_CSV } from '../test/ecg-data.ts';

const ARTIFACTS = 'model/artifacts';

/** Runs one of the model commands as `npm run` would. */
const run = (command: 'train' | 'evaluate', args: string[], env: NodeJS.ProcessEnv = {}) => runCommand(`model/${command}.ts`, args, { env });

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'commands-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('bad input to the commands: a message naming the file, row and column, and exit code 2', () => {
  const row = (cells: string[]) => cells.join(',') + '\n';
  const goodRow = row([...Array<string>(140).fill('0.5'), '1']);
  const cases: [file: string, content: string | null, message: RegExp][] = [
    ['missing.csv', null, /missing\.csv: cannot read the data file \(no such file\)/],
    ['empty.csv', '', /empty\.csv: the data file is empty/],
    ['short-row.csv', goodRow + row([...Array<string>(139).fill('0.5'), '1']), /short-row\.csv: row 2: expected 141 columns .*got 140/],
    ['text-cell.csv', goodRow + goodRow + row(['0.1', 'x1', ...Array<string>(138).fill('0.5'), '1']), /text-cell\.csv: row 3, column 2: "x1" is not a finite number/],
  ];
  for (const command of ['train', 'evaluate'] as const) {
    it.each(cases)(`${command} --data %s`, async (name, content, message) => {
      const file = path.join(scratch, command, name);
      await mkdir(path.dirname(file), { recursive: true });
      if (content !== null) await writeFile(file, content);
      const result = await run(command, ['--data', file]);
      expect(result.code).toBe(2);
      expect(loggedError(result.stderr)).toMatch(message);
    });
  }

  it.each([
    [['--epochs', 'many'], /--epochs must be a positive integer, got "many"/],
    [['--test-fraction', '1.5'], /--test-fraction must be between 0 and 1, got "1.5"/],
    [['--threshold-rule', 'guess'], /--threshold-rule must be one of mean\+std, max-accuracy, got "guess"/],
    [['--score', 'rmse'], /--score must be one of mae, mse, got "rmse"/],
    [['--no-such-option'], /Unknown option '--no-such-option'/],
  ])('train %j: usage and exit code 2', async (args, message) => {
    const result = await run('train', args);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
    expect(result.stderr).toContain('Usage: npm run train');
  });

  it('BACKEND naming no backend: exit code 2', async () => {
    const result = await run('evaluate', [], { BACKEND: 'gpu' });
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/BACKEND must be tensorflow, wasm or cpu, got "gpu"/);
  });

  it('evaluate --curves where no folder can be made: exit code 2, before any scoring', async () => {
    const result = await run('evaluate', ['--curves', 'package.json/curves']);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/--curves package\.json\/curves: cannot make the folder \(ENOTDIR\)/);
  });

  it('evaluate with a model folder that is not there: exit code 2', async () => {
    const result = await run('evaluate', ['--model', path.join(scratch, 'nothing')]);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(/nothing\/model\.json: no such file/);
  });
});

describe('train and evaluate on any CSV of numbers with a label column', () => {
  // 11 values a row after the label, in the first column: 7 is normal, 2 and 3 are anomalous.
  const rows = Array.from({ length: 240 }, (_, i) => {
    const anomalous = i % 4 === 3;
    const values = Array.from({ length: 11 }, (_, j) => (anomalous ? Math.cos(j + i) * 3 : Math.sin(j / 2) + (i % 7) / 70));
    return [anomalous ? 2 + (Math.floor(i / 4) % 2) : 7, ...values.map((v) => v.toFixed(4))].join(',');
  });

  it('trains on the width and label it is told, names the input, and evaluate reads the layout back', async () => {
    const data = path.join(scratch, 'pumps.csv');
    await writeFile(data, rows.join('\n') + '\n');
    const out = path.join(scratch, 'pumps');
    const args = ['--data', data, '--out', out, '--label-column', '1', '--normal-label', '7', '--name', 'pump-monitor', '--input-name', 'sensors', '--epochs', '2', '--target-fpr', '0.05'];
    const trained = await run('train', args);
    expect(trained.code).toBe(0);
    const metadata = metadataSchema.parse(JSON.parse(await readFile(path.join(out, 'metadata.json'), 'utf8')));
    expect(metadata.name).toBe('pump-monitor');
    expect(metadata.signature.inputs).toEqual([{ name: 'sensors', datatype: 'FP32', shape: [-1, 11] }]);
    expect(metadata.signature.outputs.map((o) => [o.role, o.shape])).toEqual([
      ['score', [-1]],
      ['verdict', [-1]],
      ['reconstruction', [-1, 11]],
      ['attribution', [-1, 11]],
      ['p_value', [-1]],
    ]);
    // A fifth of the 144 normal rows of the training part held out: 29, of which one (0.034 ≤ 0.05) scores above the threshold.
    const { calibration } = metadata;
    expect(calibration).toMatchObject({ rows: 29, source: expect.stringMatching(/^the scores of 29 normal rows of the training part/) });
    expect(calibration!.scores).toHaveLength(29);
    expect(metadata.threshold).toMatchObject({ rule: 'target-fpr', targetFpr: 0.05, value: calibration!.scores[27] });
    expect(metadata.split!.calibrationFraction).toBe(0.2);
    expect(metadata.split).toMatchObject({ labelColumn: 1, normalLabel: 7, dataRows: 240 });
    expect(metadata.examples!.map((e) => [e.name, e.label, e.values.length])).toEqual([
      ['normal', 7, 11],
      ['anomalous', undefined, 11],
    ]);

    const evaluated = await run('evaluate', ['--data', data, '--model', out]);
    expect(evaluated.code).toBe(0);
    expect(JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!)).toEqual(metadata.evaluation);
  });

  it('--score mse: trained on the squared error, scored and thresholded on it, recorded in metadata.json and the version', async () => {
    const data = path.join(scratch, 'pumps-mse.csv');
    await writeFile(data, rows.join('\n') + '\n');
    const common = ['--data', data, '--label-column', '1', '--normal-label', '7', '--epochs', '2', '--threshold-rule', 'max-accuracy'];
    const [mse, mae] = await Promise.all([
      run('train', [...common, '--out', path.join(scratch, 'pumps-mse'), '--score', 'mse']),
      run('train', [...common, '--out', path.join(scratch, 'pumps-mae')]),
    ]);
    expect(mse.code, mse.stderr).toBe(0);
    expect(mae.code, mae.stderr).toBe(0);
    const read = async (dir: string) => metadataSchema.parse(JSON.parse(await readFile(path.join(scratch, dir, 'metadata.json'), 'utf8')));
    const [squared, absolute] = [await read('pumps-mse'), await read('pumps-mae')];
    expect([squared.score, absolute.score]).toEqual(['mse', 'mae']);
    expect(squared.version).not.toBe(absolute.version);
    // The same weights start (the seed), another loss: the squared errors of rows in [0, 1] are the smaller.
    expect(squared.threshold.value).toBeLessThan(absolute.threshold.value);
    const evaluated = await run('evaluate', ['--data', data, '--model', path.join(scratch, 'pumps-mse')]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!)).toEqual(squared.evaluation);
  });

  it.each([
    [['--label-column', '0'], /--label-column must be a column number from 1, or "last", got "0"/],
    [['--input-name', 'my input'], /--input-name must be letters, digits/],
    [['--label-column', '30'], /row 1 has 12 columns: it needs at least one value and the label \(column 30\)/],
    [['--normal-label', '5'], /no row has the normal label 5 in column 12/],
    [['--label-column', '1', '--normal-label', '7'], /--target-fpr 0\.03 is finer than 29 calibration rows can tell: the smallest rate they resolve is one row, 1\/29 = 0\.034/],
    [['--target-fpr', '0.05', '--threshold-rule', 'mean+std'], /give --threshold-rule or --target-fpr, not both/],
    [['--target-fpr', '5%'], /--target-fpr must be a rate between 0 and 1, e\.g\. 0\.01, got "5%"/],
    [['--calibration-fraction', '1'], /--calibration-fraction must be between 0 and 1, got "1"/],
  ])('train %j: a message and exit code 2, before any training', async (args, message) => {
    const data = path.join(scratch, 'pumps-bad.csv');
    await writeFile(data, rows.join('\n') + '\n');
    const result = await run('train', ['--data', data, '--epochs', '1', '--out', path.join(scratch, 'unused'), ...args]);
    expect(result.code).toBe(2);
    expect(loggedError(result.stderr)).toMatch(message);
    expect(logLines(result.stderr).filter((line) => line.msg === 'epoch')).toEqual([]);
  });
});

describeWithEcgData('train and evaluate on ECG5000', () => {
  const committed = async (): Promise<ModelMetadata> => metadataSchema.parse(JSON.parse(await readFile(`${ARTIFACTS}/metadata.json`, 'utf8')));

  it('train writes the three files with a progress line per epoch, and the same seed gives the same split', async () => {
    const out = path.join(scratch, 'trained');
    const result = await run('train', ['--data', ECG_CSV, '--out', out, '--epochs', '2']);
    expect(result.code).toBe(0);
    const lines = logLines(result.stderr);
    expect(lines.filter((line) => line.msg === 'epoch').map((line) => line.epoch)).toEqual([1, 2]);
    expect(lines.at(-1)!.msg).toBe('model written');

    const metadata = metadataSchema.parse(JSON.parse(await readFile(path.join(out, 'metadata.json'), 'utf8')));
    const bundled = await committed();
    expect(metadata.split).toEqual(bundled.split);
    expect(metadata.split!.testRowIndices).toHaveLength(1000);
    expect(metadata.threshold).toMatchObject({ rule: 'target-fpr', targetFpr: 0.03 });
    expect(metadata.calibration).toMatchObject({ rows: bundled.calibration!.rows });
    expect(metadata.evaluation?.rows).toBe(1000);
    expect(metadata.signature).toEqual(bundled.signature);
    expect(metadata.examples!.map((e) => [e.name, e.label, e.rows, e.values.length])).toEqual([
      ['normal', 1, 2335, 140],
      ['anomalous', 0, 1665, 140],
    ]);
    for (const file of ['model.json', 'weights.bin']) await expect(readFile(path.join(out, file))).resolves.toBeTruthy();
  });

  it('evaluate prints the table and a JSON line equal to the recorded evaluation, which meets the quality target', async () => {
    const result = await run('evaluate', ['--data', ECG_CSV]);
    expect(result.code).toBe(0);
    const [table, json] = [result.stdout.slice(0, result.stdout.lastIndexOf('\n{')), result.stdout.trim().split('\n').at(-1)!];
    expect(table).toMatch(/accuracy\s+\d+\.\d\d%/);
    expect(table).toMatch(/ROC AUC\s+0\.\d{4}/);
    expect(table).toMatch(/confusion matrix/);
    const evaluation = JSON.parse(json);
    const { evaluation: recorded } = await committed();
    expect(evaluation.confusionMatrix).toEqual(recorded!.confusionMatrix);
    expect(evaluation.rocAuc).toBeCloseTo(recorded!.rocAuc, 6);
    expect(evaluation.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(evaluation.rocAuc).toBeGreaterThanOrEqual(0.98);
  });

  it('evaluate --curves writes the ROC and precision-recall curves, through the recorded operating point, and the SVG the docs show', async () => {
    const dir = path.join(scratch, 'curves');
    const result = await run('evaluate', ['--data', ECG_CSV, '--curves', dir]);
    expect(result.code, result.stderr).toBe(0);
    const { evaluation, threshold } = await committed();
    const curves = JSON.parse(await readFile(path.join(dir, 'curves.json'), 'utf8')) as { threshold: number; testRows: number; points: CurvePoint[] };
    expect(curves).toMatchObject({ threshold: threshold.value, testRows: 1000 });
    const at = curves.points.find((p) => p.threshold <= threshold.value)!;
    expect(at.falsePositiveRate).toBeCloseTo(evaluation!.falsePositiveRate!, 12);
    expect(at.recall).toBeCloseTo(evaluation!.anomalous.recall, 12);
    expect(curves.points[0]).toMatchObject({ falsePositiveRate: 0, recall: 0 });
    expect(curves.points.at(-1)).toMatchObject({ falsePositiveRate: 1, recall: 1 });
    expect(await readFile(path.join(dir, 'curves.svg'), 'utf8')).toBe(await readFile('docs/evaluation-curves.svg', 'utf8'));
  });

  it('evaluate --write stores the evaluation in metadata.json', async () => {
    const model = path.join(scratch, 'copy');
    await cp(ARTIFACTS, model, { recursive: true });
    const { evaluation, ...withoutEvaluation } = await committed();
    await writeFile(path.join(model, 'metadata.json'), JSON.stringify(withoutEvaluation));
    const result = await run('evaluate', ['--data', ECG_CSV, '--model', model, '--write']);
    expect(result.code).toBe(0);
    const written = JSON.parse(await readFile(path.join(model, 'metadata.json'), 'utf8')) as ModelMetadata;
    expect(written.evaluation?.confusionMatrix).toEqual(evaluation!.confusionMatrix);
  });
});
