import { afterAll, beforeAll } from 'vitest';
import { selectBackend } from '../model/backend.ts';
import { Detector } from '../model/detector.ts';

/** Where the bundled model lives. */
export const BUNDLED_MODEL = 'model/artifacts';

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
    const beat = (name: string) => fixture.detector.metadata.examples.find((example) => example.name === name)!.beat;
    fixture.normal = beat('normal');
    fixture.anomalous = beat('anomalous');
  });
  afterAll(() => fixture.detector.dispose());
  return fixture;
}
