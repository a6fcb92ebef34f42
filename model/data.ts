import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { InputError } from '../lib/cli.ts';
import type { ModelMetadata, Normalisation } from './artifact.ts';

/** Where a data file's label is, and which value of it means normal; every other value is anomalous. */
export interface LabelLayout {
  /** 1-based, as a spreadsheet counts, or the last column; 'none': no labels, every row normal. */
  readonly labelColumn: number | 'last' | 'none';
  readonly normalLabel: number;
}

/** ECG5000's layout: 140 samples, then the label, 1 for a normal beat (its four anomalous classes are 0). */
export const ECG5000_LAYOUT: LabelLayout = { labelColumn: 'last', normalLabel: 1 };

/** A data file that cannot be used, with the place (file, row, column) where that shows. */
export class DataFileError extends InputError {
  override name = 'DataFileError';
}

export interface LabelledData {
  /** Every row's values: each column but the label, in order. */
  readonly rows: number[][];
  readonly labels: number[];
  /** Values a row. */
  readonly width: number;
  readonly layout: LabelLayout;
  readonly sha256: string;
}

/** Whether a row's label says it is anomalous. */
export const isAnomalous = (data: LabelledData, row: number) => data.labels[row] !== data.layout.normalLabel;

/**
 * Reads a CSV of numbers with a label column and no header, such as ECG5000's `ecg.csv`. Every row
 * has the first row's number of columns. Rows and columns in errors count from 1, as a spreadsheet
 * shows them.
 */
export async function readLabelledCsv(file: string, layout: LabelLayout = ECG5000_LAYOUT): Promise<LabelledData> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataFileError(`${file}: cannot read the data file (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  let records: string[][];
  try {
    records = parse(bytes, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: true });
  } catch (error) {
    throw new DataFileError(`${file}: not a CSV file: ${(error as Error).message}`);
  }
  if (records.length === 0) throw new DataFileError(`${file}: the data file is empty`);
  const columns = records[0]!.length;
  const labelled = layout.labelColumn !== 'none';
  const labelIndex = layout.labelColumn === 'none' ? -1 : layout.labelColumn === 'last' ? columns - 1 : layout.labelColumn - 1;
  if (labelled && (columns < 2 || labelIndex < 0 || labelIndex >= columns)) {
    throw new DataFileError(`${file}: row 1 has ${columns} columns: it needs at least one value and the label (column ${labelIndex + 1})`);
  }
  const rows: number[][] = [];
  const labels: number[] = [];
  records.forEach((record, index) => {
    const row = index + 1;
    if (record.length !== columns) {
      throw new DataFileError(
        `${file}: row ${row}: expected ${columns} columns (${labelled ? `${columns - 1} values and the label` : `${columns} values`}, as in row 1), got ${record.length}`,
      );
    }
    const values = record.map((cell, column) => {
      const value = cell === '' ? NaN : Number(cell);
      if (!Number.isFinite(value)) {
        throw new DataFileError(`${file}: row ${row}, column ${column + 1}: ${JSON.stringify(cell)} is not a finite number`);
      }
      return value;
    });
    labels.push(labelled ? values.splice(labelIndex, 1)[0]! : layout.normalLabel);
    rows.push(values);
  });
  if (!labels.includes(layout.normalLabel)) {
    throw new DataFileError(`${file}: no row has the normal label ${layout.normalLabel} in column ${labelIndex + 1}: there is nothing to learn "normal" from`);
  }
  return { rows, labels, width: rows[0]!.length, layout, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** mulberry32: a small seeded generator, so a split is the same on every machine and backend. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher-Yates shuffle (returns a new array). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}

export interface Split {
  /** Zero-based row indices, ascending. */
  readonly train: number[];
  readonly test: number[];
}

/**
 * A seeded split stratified by label: each label keeps its share in both parts. The same labels,
 * seed and fraction always give the same split.
 */
export function stratifiedSplit(labels: readonly number[], seed: number, testFraction: number): Split {
  const random = seededRandom(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const label of [...new Set(labels)].sort((a, b) => a - b)) {
    const rows = shuffled(
      labels.flatMap((l, index) => (l === label ? [index] : [])),
      random,
    );
    const testCount = Math.round(rows.length * testFraction);
    test.push(...rows.slice(0, testCount));
    train.push(...rows.slice(testCount));
  }
  const ascending = (a: number, b: number) => a - b;
  return { train: train.sort(ascending), test: test.sort(ascending) };
}

/** Min-max scaling parameters: the global minimum and maximum of the given rows. */
export function fitMinMax(rows: readonly number[][]): Extract<Normalisation, { method: 'min-max' }> {
  let min = Infinity;
  let max = -Infinity;
  for (const row of rows) {
    for (const value of row) {
      if (value < min) min = value;
      if (value > max) max = value;
    }
  }
  return { method: 'min-max', min, max };
}

/** Per-feature min-max scaling parameters, as scikit-learn's MinMaxScaler fits them: each column's minimum and maximum. */
export function fitMinMaxPerFeature(rows: readonly number[][]): Extract<Normalisation, { method: 'min-max-per-feature' }> {
  const min = [...rows[0]!];
  const max = [...rows[0]!];
  for (const row of rows) {
    row.forEach((value, i) => {
      if (value < min[i]!) min[i] = value;
      if (value > max[i]!) max[i] = value;
    });
  }
  return { method: 'min-max-per-feature', min, max };
}

/** The column-wise mean of some rows. */
export function meanRow(rows: readonly number[][]): number[] {
  const sums = new Array<number>(rows[0]?.length ?? 0).fill(0);
  for (const row of rows) row.forEach((value, i) => (sums[i]! += value));
  return sums.map((sum) => sum / rows.length);
}

/**
 * One example a class of the given rows: the mean row of the normal ones and of the anomalous ones
 * (labelled when they share one label), for demos and load tests.
 */
export function classExamples(data: LabelledData, rows: readonly number[]): NonNullable<ModelMetadata['examples']> {
  const { normalLabel } = data.layout;
  const normal = rows.filter((row) => !isAnomalous(data, row));
  const anomalous = rows.filter((row) => isAnomalous(data, row));
  const anomalousLabels = [...new Set(anomalous.map((row) => data.labels[row]!))];
  return [
    { name: 'normal', label: normalLabel, rows: normal },
    { name: 'anomalous', label: anomalousLabels.length === 1 ? anomalousLabels[0] : undefined, rows: anomalous },
  ]
    .filter((example) => example.rows.length > 0)
    .map(({ name, label, rows: members }) => ({
      name,
      ...(label === undefined || !Number.isInteger(label) ? {} : { label }),
      rows: members.length,
      values: meanRow(members.map((row) => data.rows[row]!)),
    }));
}

/**
 * Standardisation parameters: each column's mean and (population) standard deviation, as
 * scikit-learn's StandardScaler fits them; a constant column gets 1, as it does there, so that
 * its values are centred and not divided by zero.
 */
export function fitStandard(rows: readonly number[][]): Extract<Normalisation, { method: 'standard' }> {
  const mean = meanRow(rows);
  const squares = new Array<number>(mean.length).fill(0);
  for (const row of rows) row.forEach((value, i) => (squares[i]! += (value - mean[i]!) ** 2));
  return { method: 'standard', mean, std: squares.map((sum) => Math.sqrt(sum / rows.length) || 1) };
}
