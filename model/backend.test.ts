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

  /** Activation as it goes where only the backends in `working` can start. */
  const onlyWorking = (...working: string[]) => {
    const tried: string[] = [];
    const activate = async (name: string) => {
      tried.push(name);
      if (!working.includes(name)) throw new Error(`Cannot find package '${name}'\nstack…`);
    };
    return { tried, activate };
  };

  it('picks the fastest backend that starts, and says which faster ones it skipped and why', async () => {
    const withoutNative = onlyWorking('wasm', 'cpu');
    const choice = await selectBackend(undefined, withoutNative.activate);
    expect(choice).toEqual({ backend: 'wasm', skipped: [{ backend: 'tensorflow', reason: "Cannot find package 'tensorflow'" }] });
    expect(withoutNative.tried).toEqual(['tensorflow', 'wasm']);
    expect(fallbackNotice(choice)).toMatch(/^@tensorflow\/tfjs-node is not available \(Cannot find package 'tensorflow'\), so the model runs on the wasm backend: forward passes in WebAssembly instead of native TensorFlow/);

    const native = await selectBackend(undefined, onlyWorking('tensorflow', 'wasm', 'cpu').activate);
    expect(native).toEqual({ backend: 'tensorflow', skipped: [] });
    expect(fallbackNotice(native)).toBeUndefined();
    expect((await selectBackend(undefined, onlyWorking('cpu').activate)).backend).toBe('cpu');
    await expect(selectBackend(undefined, onlyWorking().activate)).rejects.toThrow('backend "cpu" is not available: no TensorFlow.js backend could be initialised');
  });

  it('never falls back from a backend that was asked for', async () => {
    const { tried, activate } = onlyWorking('wasm', 'cpu');
    const error = await selectBackend('tensorflow', activate).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe("backend \"tensorflow\" is not available: Cannot find package 'tensorflow'");
    expect(tried).toEqual(['tensorflow']);
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
