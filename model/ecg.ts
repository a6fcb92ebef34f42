import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import type { Normalisation } from './artifact.ts';

/** Samples a beat in ecg.csv; the label follows them. */
export const BEAT_LENGTH = 140;
/** The label column: 1 is a normal beat, 0 an anomalous one. */
export const NORMAL = 1;
export const ANOMALOUS = 0;

/** A data file that cannot be used, with the place (file, row, column) where that shows. */
export class DataFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataFileError';
  }
}

export interface EcgData {
  readonly beats: number[][];
  readonly labels: number[];
  readonly sha256: string;
}

/**
 * Reads an ECG5000 `ecg.csv`: one beat a row, 140 samples then the label (1 normal, 0 anomalous),
 * no header. Rows and columns in errors count from 1, as a spreadsheet shows them.
 */
export async function readEcgCsv(file: string): Promise<EcgData> {
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
  const beats: number[][] = [];
  const labels: number[] = [];
  records.forEach((record, index) => {
    const row = index + 1;
    if (record.length !== BEAT_LENGTH + 1) {
      throw new DataFileError(
        `${file}: row ${row}: expected ${BEAT_LENGTH + 1} columns (${BEAT_LENGTH} samples and the label), got ${record.length}`,
      );
    }
    const values = record.map((cell, column) => {
      const value = cell === '' ? NaN : Number(cell);
      if (!Number.isFinite(value)) {
        throw new DataFileError(`${file}: row ${row}, column ${column + 1}: ${JSON.stringify(cell)} is not a finite number`);
      }
      return value;
    });
    const label = values.pop()!;
    if (label !== NORMAL && label !== ANOMALOUS) {
      throw new DataFileError(
        `${file}: row ${row}, column ${BEAT_LENGTH + 1}: label ${label} is neither ${NORMAL} (normal) nor ${ANOMALOUS} (anomalous)`,
      );
    }
    beats.push(values);
    labels.push(label);
  });
  return { beats, labels, sha256: createHash('sha256').update(bytes).digest('hex') };
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

/** Min-max scaling parameters: the global minimum and maximum of the given beats. */
export function fitMinMax(beats: readonly number[][]): Normalisation {
  let min = Infinity;
  let max = -Infinity;
  for (const beat of beats) {
    for (const value of beat) {
      if (value < min) min = value;
      if (value > max) max = value;
    }
  }
  return { method: 'min-max', min, max };
}

/** The sample-wise mean of some beats. */
export function meanBeat(beats: readonly number[][]): number[] {
  const sums = new Array<number>(beats[0]?.length ?? 0).fill(0);
  for (const beat of beats) beat.forEach((value, i) => (sums[i]! += value));
  return sums.map((sum) => sum / beats.length);
}
