import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, fallbackNotice, isBackendName, selectBackend } from './backend.ts';

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
    await expect(selectBackend(name)).resolves.toEqual({ backend: name, skipped: [] });
    expect(tf.getBackend()).toBe(name);
    expect(tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]).toBe(5);
  });

  it('picks the fastest backend that works: tensorflow when tfjs-node is installed, else wasm, saying why and what it costs', async () => {
    const choice = await selectBackend();
    if (tfjsNodeWorks()) {
      expect(choice).toEqual({ backend: 'tensorflow', skipped: [] });
      expect(fallbackNotice(choice)).toBeUndefined();
    } else {
      expect(choice.backend).toBe('wasm');
      expect(choice.skipped).toEqual([{ backend: 'tensorflow', reason: expect.stringMatching(/@tensorflow\/tfjs-node/) }]);
      expect(fallbackNotice(choice)).toMatch(
        /^@tensorflow\/tfjs-node is not available \(.*tfjs-node.*\), so the model runs on the wasm backend: forward passes in WebAssembly instead of native TensorFlow/,
      );
    }
  });

  it('activates tensorflow when asked if tfjs-node is installed, and otherwise says it is not available', async () => {
    if (tfjsNodeWorks()) {
      await expect(selectBackend('tensorflow')).resolves.toEqual({ backend: 'tensorflow', skipped: [] });
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
