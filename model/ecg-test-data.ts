import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

/**
 * Where tests find the ECG5000 data set: $ECG_CSV, or the shared copy beside the project. Suites
 * that need it are skipped, with a note on how to get it, where it is absent, except in CI.
 */
export const ECG_CSV = process.env.ECG_CSV || fileURLToPath(new URL('../../shared/data/ecg5000/ecg.csv', import.meta.url));
const available = existsSync(ECG_CSV);
const HOW_TO_GET_IT =
  'download ECG5000 (UCR archive; the ecg.csv of TensorFlow\'s "Intro to Autoencoders" has the same layout) ' +
  'and set ECG_CSV to its path, or put it at ../shared/data/ecg5000/ecg.csv';

if (!available && process.env.CI) {
  throw new Error(`the ECG5000 data set is missing at ${ECG_CSV}, and CI runs every test: ${HOW_TO_GET_IT}`);
}

/** `describe` for suites that read the data set. */
export function describeWithEcgData(name: string, body: () => void): void {
  if (available) describe(name, body);
  else describe.skip(`${name} [skipped: no data set at ${ECG_CSV}; ${HOW_TO_GET_IT}]`, body);
}
