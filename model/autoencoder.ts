import * as tf from '@tensorflow/tfjs';
import type { ScoreFunction } from './artifact.ts';

export interface AutoencoderOptions {
  readonly inputLength: number;
  readonly learningRate: number;
  /** Seeds the weight initialisers, so that training is repeatable. */
  readonly seed: number;
  /** The loss, the score the model will be thresholded on. */
  readonly loss: ScoreFunction;
}

const LOSSES: Record<ScoreFunction, string> = { mae: 'meanAbsoluteError', mse: 'meanSquaredError' };

/**
 * The architecture of TensorFlow's "Intro to Autoencoders": a Dense 32→16→8 encoder and a
 * 16→32→input decoder (sigmoid, as the inputs are min-max scaled into [0, 1]), trained with Adam on
 * the score it will be thresholded on (the mean absolute error, or the mean squared).
 */
export function buildAutoencoder({ inputLength, learningRate, seed, loss }: AutoencoderOptions): tf.Sequential {
  const layers: [units: number, activation: 'relu' | 'sigmoid'][] = [
    [32, 'relu'],
    [16, 'relu'],
    [8, 'relu'],
    [16, 'relu'],
    [32, 'relu'],
    [inputLength, 'sigmoid'],
  ];
  const model = tf.sequential({ name: 'autoencoder' });
  layers.forEach(([units, activation], index) =>
    model.add(
      tf.layers.dense({
        units,
        activation,
        inputShape: index === 0 ? [inputLength] : undefined,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + index }),
      }),
    ),
  );
  model.compile({ optimizer: tf.train.adam(learningRate), loss: LOSSES[loss] });
  return model;
}
