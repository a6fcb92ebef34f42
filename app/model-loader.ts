import { selectBackend, type BackendChoice } from '../model/backend.ts';
import { Batcher, type BatcherOptions } from './batcher.ts';
import type { Config } from './settings.ts';
import { Detector } from '../model/detector.ts';
import type { LoadedModel } from './serving.ts';
import type { Logger } from '../lib/logger.ts';

/**
 * Loads the configured model onto the fastest backend, with its batcher. The server imports this
 * file only when it loads the model: it is what brings in TensorFlow.js, which the cluster primary
 * (the same entry point) must not load.
 */
export async function loadModel(
  config: Config,
  observers: Pick<BatcherOptions, 'metrics' | 'drift'>,
  logger: Logger,
): Promise<{ model: LoadedModel; backend: BackendChoice }> {
  const backend = await selectBackend(config.backend);
  const detector = await Detector.load(config.modelPath, { threshold: config.threshold });
  return { model: { detector, batcher: new Batcher(detector, { ...config, ...observers, logger }) }, backend };
}
