import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** The TensorFlow.js backends the runtime can run on, fastest first. */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    reason: string,
  ) {
    super(`backend "${backend}" is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

export function isBackendName(value: string): value is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(value);
}

const require = createRequire(import.meta.url);
const TFJS_NODE: string = '@tensorflow/tfjs-node';

async function activate(name: BackendName): Promise<void> {
  switch (name) {
    case 'tensorflow':
      // tfjs-node is optional (its install downloads libtensorflow, which only the production image
      // does), so it is imported by a name the type checker does not resolve.
      await import(TFJS_NODE);
      break;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Node cannot fetch the .wasm binaries by URL; point the loader at the installed package.
      const binary = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
      wasm.setWasmPaths(path.dirname(binary) + path.sep);
      break;
    }
    case 'cpu':
      break; // @tensorflow/tfjs registers it
  }
  if (!(await tf.setBackend(name))) throw new Error('it failed to initialise');
}

/**
 * Activates a TensorFlow.js backend: the one asked for, or else the fastest that works here
 * (tensorflow → wasm → cpu). A backend that was asked for and cannot start is an error, never a
 * silent fallback, so a production pod never runs on a slower backend than its operator chose.
 */
export async function selectBackend(requested?: BackendName): Promise<BackendName> {
  if (requested) {
    try {
      await activate(requested);
    } catch (error) {
      throw new BackendUnavailableError(requested, reasonOf(error));
    }
    return requested;
  }
  for (const name of BACKEND_NAMES) {
    try {
      await activate(name);
      return name;
    } catch {
      // try the next, slower backend
    }
  }
  throw new BackendUnavailableError('cpu', 'no TensorFlow.js backend could be initialised');
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
