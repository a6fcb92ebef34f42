import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeIf } from './describe-if.ts';

/** Where tests find the ECG5000 data set: $ECG_CSV, or the shared copy beside the project. */
export const ECG_CSV = process.env.ECG_CSV || fileURLToPath(new URL('../../shared/data/ecg5000/ecg.csv', import.meta.url));

/** `describe` for suites that read the data set. */
export function describeWithEcgData(name: string, body: () => void): void {
  describeIf(
    existsSync(ECG_CSV),
    `no ECG5000 data set at ${ECG_CSV}: download ECG5000 (UCR archive; the ecg.csv of TensorFlow's ` +
      '"Intro to Autoencoders" has the same layout) and set ECG_CSV to its path, or put it at ../shared/data/ecg5000/ecg.csv',
    name,
    body,
  );
}
