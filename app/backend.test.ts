import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, isBackendName, selectBackend } from './backend.ts';

/** Whether tfjs-node, an optional dependency, installed with its native library here. */
function tfjsNodeWorks(): boolean {
  try {
    createRequire(import.meta.url)('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

describe('selectBackend', () => {
  it.each(['wasm', 'cpu'] as const)('activates %s when asked', async (name) => {
    await expect(selectBackend(name)).resolves.toBe(name);
    expect(tf.getBackend()).toBe(name);
    expect(tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]).toBe(5);
  });

  it('picks the fastest backend that works: tensorflow when tfjs-node is installed, else wasm', async () => {
    await expect(selectBackend()).resolves.toBe(tfjsNodeWorks() ? 'tensorflow' : 'wasm');
  });

  it('activates tensorflow when asked if tfjs-node is installed, and otherwise says it is not available', async () => {
    if (tfjsNodeWorks()) {
      await expect(selectBackend('tensorflow')).resolves.toBe('tensorflow');
    } else {
      const error = await selectBackend('tensorflow').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toMatch(/^backend "tensorflow" is not available: /);
    }
  });

  it('knows the backend names', () => {
    expect(['tensorflow', 'wasm', 'cpu'].every(isBackendName)).toBe(true);
    expect(isBackendName('webgl')).toBe(false);
  });
});
