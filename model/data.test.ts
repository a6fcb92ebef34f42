import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataFileError, fitMinMax, isAnomalous, meanRow, readLabelledCsv, stratifiedSplit, type LabelledData } from './data.ts';
import { describeWithEcgData, ECG_CSV } from '../test/ecg-data.ts';

const beat = (value: number) => Array.from({ length: 140 }, () => value);
const csvRow = (values: (number | string)[]) => values.join(',');

async function csvFile(content: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'ecg-')), 'ecg.csv');
  await writeFile(file, content);
  return file;
}

describe('readLabelledCsv', () => {
  it('reads ECG5000 rows by default: the values, then the label, 1 normal', async () => {
    const file = await csvFile(`${csvRow([...beat(0.5), 1])}\n${csvRow([...beat(-1), 0])}\n${csvRow([...beat(2), 3])}\n`);
    const data = await readLabelledCsv(file);
    expect(data.labels).toEqual([1, 0, 3]);
    expect(data.rows[1]).toEqual(beat(-1));
    expect(data.width).toBe(140);
    expect([0, 1, 2].map((row) => isAnomalous(data, row))).toEqual([false, true, true]);
    expect(data.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads any width, with the label in any column and any normal value', async () => {
    const file = await csvFile('7,0.1,0.2,0.3\n2,1.1,1.2,1.3\n7,2.1,2.2,2.3\n');
    const data = await readLabelledCsv(file, { labelColumn: 1, normalLabel: 7 });
    expect(data.width).toBe(3);
    expect(data.rows).toEqual([
      [0.1, 0.2, 0.3],
      [1.1, 1.2, 1.3],
      [2.1, 2.2, 2.3],
    ]);
    expect(data.labels).toEqual([7, 2, 7]);
    expect([0, 1, 2].map((row) => isAnomalous(data, row))).toEqual([false, true, false]);
  });

  it.each([
    ['a missing file', null, /no-such\.csv: cannot read the data file \(no such file\)/],
    ['an empty file', '', /the data file is empty/],
    ['a short row', `${csvRow([...beat(1), 1])}\n${csvRow([...beat(1).slice(1), 1])}\n`, /row 2: expected 141 columns \(140 values and the label, as in row 1\), got 140/],
    ['a non-numeric cell', `${csvRow([...beat(1).slice(0, 6), 'abc', ...beat(1).slice(7), 1])}\n`, /row 1, column 7: "abc" is not a finite number/],
    ['an empty cell', `${csvRow([...beat(1).slice(0, 2), '', ...beat(1).slice(3), 1])}\n`, /row 1, column 3: "" is not a finite number/],
    ['no normal row', `${csvRow([...beat(1), 3])}\n`, /no row has the normal label 1 in column 141/],
    ['a single column', '1\n1\n', /row 1 has 1 columns: it needs at least one value and the label/],
  ])('rejects %s, naming the file and the place', async (_, content, message) => {
    const file = content === null ? path.join(tmpdir(), 'no-such.csv') : await csvFile(content);
    const error = await readLabelledCsv(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataFileError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(message);
  });
});

describe('stratifiedSplit', () => {
  const labels = [...Array(300).fill(1), ...Array(200).fill(0)] as number[];

  it('is the same for the same seed and different for another', () => {
    expect(stratifiedSplit(labels, 42, 0.2)).toEqual(stratifiedSplit(labels, 42, 0.2));
    expect(stratifiedSplit(labels, 43, 0.2).test).not.toEqual(stratifiedSplit(labels, 42, 0.2).test);
  });

  it('keeps each label’s share in the test part, and the parts are disjoint and complete', () => {
    const { train, test } = stratifiedSplit(labels, 7, 0.2);
    expect(test.filter((row) => labels[row] === 1)).toHaveLength(60);
    expect(test.filter((row) => labels[row] === 0)).toHaveLength(40);
    expect(new Set([...train, ...test]).size).toBe(labels.length);
    expect(train.length + test.length).toBe(labels.length);
  });
});

describe('fitMinMax and meanRow', () => {
  it('take the global extremes and the column-wise mean', () => {
    expect(fitMinMax([[1, -2], [3, 0]])).toEqual({ method: 'min-max', min: -2, max: 3 });
    expect(meanRow([[1, -2], [3, 0]])).toEqual([2, -1]);
  });
});

describeWithEcgData('the ECG5000 data set', () => {
  let data: LabelledData;
  beforeAll(async () => {
    data = await readLabelledCsv(ECG_CSV);
  });

  it('has 5000 beats of 140 samples, 2919 of them normal', () => {
    expect(data.rows).toHaveLength(5000);
    expect(data.rows.every((b) => b.length === 140)).toBe(true);
    expect(data.labels.filter((l) => l === 1)).toHaveLength(2919);
  });

  it('splits 80/20 with both labels in proportion', () => {
    const { train, test } = stratifiedSplit(data.labels, 42, 0.2);
    expect(test).toHaveLength(1000);
    expect(train).toHaveLength(4000);
    expect(test.filter((row) => data.labels[row] === 1)).toHaveLength(Math.round(2919 * 0.2));
  });
});
