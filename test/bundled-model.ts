import { afterAll, beforeAll } from 'vitest';
import { readMetadata } from '../model/artifact.ts';
import { selectBackend } from '../model/backend.ts';
import { Detector } from '../model/detector.ts';

/** Where the bundled model lives. */
export const BUNDLED_MODEL = 'model/artifacts';

/** The bundled model's metadata.json, read without TensorFlow.js. */
export const bundledMetadata = readMetadata(BUNDLED_MODEL);

/** One of the bundled model's example rows: the mean normal or anomalous beat of its training data. */
export const bundledExample = (name: 'normal' | 'anomalous'): number[] => bundledMetadata.examples!.find((example) => example.name === name)!.values;

export interface BundledModel {
  readonly detector: Detector;
  /** The mean normal and anomalous beats of its training data (metadata.json's examples). */
  readonly normal: number[];
  readonly anomalous: number[];
}

/**
 * The one fixture of the tests that need a real detector: the bundled model, loaded on the
 * fastest backend before the file's tests and disposed after them. The fields are there once the
 * file's `beforeAll` hooks have run.
 */
export function useBundledModel(): BundledModel {
  const fixture = {} as { detector: Detector; normal: number[]; anomalous: number[] };
  beforeAll(async () => {
    await selectBackend();
    fixture.detector = await Detector.load(BUNDLED_MODEL);
    fixture.normal = bundledExample('normal');
    fixture.anomalous = bundledExample('anomalous');
  });
  afterAll(() => fixture.detector.dispose());
  return fixture;
}
