import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The Keras files committed with the project: real files from the corpus, and their references. */
export const FIXTURES = 'test/fixtures/keras-corpus';

/** A reference: rows with their scores, or (a sequence model's) windows `x` with their reconstructions `y`. */
export type Reference = { readonly rows: number[][]; readonly mae: number[]; readonly mse: number[] } | { readonly x: number[][][]; readonly y: number[][][] };

/** The instances a reference sends (rows, or windows as lists of steps) and the score each should get. */
export function expectations(reference: Reference, score: 'mae' | 'mse'): { instances: unknown[]; shape: number[]; scores: number[] } {
  if ('rows' in reference) return { instances: reference.rows, shape: [reference.rows.length, reference.rows[0]!.length], scores: reference[score] };
  const { x, y } = reference;
  const scores = x.map((window, i) => {
    const [values, reconstruction] = [window.flat(), y[i]!.flat()];
    return values.reduce((sum, v, j) => sum + (score === 'mae' ? Math.abs(v - reconstruction[j]!) : (v - reconstruction[j]!) ** 2), 0) / values.length;
  });
  return { instances: x, shape: [x.length, x[0]!.length, x[0]![0]!.length], scores };
}


/** The reference of the Keras file `name` in `dir`. */
export const readReference = (dir: string, name: string) => JSON.parse(readFileSync(path.join(dir, 'reference', `${name}.json`), 'utf8')) as Reference;
