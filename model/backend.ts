import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../lib/cli.ts';
import { installedWasmBinaries, WASM_BINARY } from '../lib/wasm-binaries.ts';

/** The TensorFlow.js backends the runtime can run on, fastest first. */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export class BackendUnavailableError extends InputError {
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

const TFJS_NODE: string = '@tensorflow/tfjs-node';

/** Makes `name` TensorFlow.js's backend, or throws why it cannot. */
export type ActivateBackend = (name: BackendName) => Promise<void>;

async function activate(name: BackendName): Promise<void> {
  // Imported here rather than at the top, so that importing this file (for its names, as the
  // configuration does) costs nothing: the cluster primary never loads TensorFlow.js.
  const tf = await import('@tensorflow/tfjs');
  switch (name) {
    case 'tensorflow':
      // tfjs-node is optional (its install downloads libtensorflow, which only the production image
      // does), so it is imported by a name the type checker does not resolve.
      await import(TFJS_NODE);
      break;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Node cannot fetch the .wasm binaries by URL; point the loader at them: beside this module
      // in the bundle the image runs (lib/bundle.ts puts them there), else the installed package's.
      const bundled = new URL(WASM_BINARY, import.meta.url);
      wasm.setWasmPaths((existsSync(bundled) ? path.dirname(fileURLToPath(bundled)) : installedWasmBinaries()) + path.sep);
      break;
    }
    case 'cpu':
      break; // @tensorflow/tfjs registers it
  }
  if (!(await tf.setBackend(name))) throw new Error('it failed to initialise');
}

export interface BackendChoice {
  readonly backend: BackendName;
  /** The faster backends that were tried first and could not start, and why. */
  readonly skipped: readonly { readonly backend: BackendName; readonly reason: string }[];
}

/**
 * Activates a TensorFlow.js backend: the one asked for, or else the fastest that works here
 * (tensorflow → wasm → cpu). A backend that was asked for and cannot start is an error, never a
 * silent fallback, so a production pod never runs on a slower backend than its operator chose.
 */
export async function selectBackend(requested?: BackendName, activateBackend: ActivateBackend = activate): Promise<BackendChoice> {
  if (requested) {
    try {
      await activateBackend(requested);
    } catch (error) {
      throw new BackendUnavailableError(requested, reasonOf(error));
    }
    return { backend: requested, skipped: [] };
  }
  const skipped: { backend: BackendName; reason: string }[] = [];
  for (const backend of BACKEND_NAMES) {
    try {
      await activateBackend(backend);
      return { backend, skipped };
    } catch (error) {
      skipped.push({ backend, reason: reasonOf(error) }); // try the next, slower backend
    }
  }
  throw new BackendUnavailableError('cpu', 'no TensorFlow.js backend could be initialised');
}

/**
 * One sentence for the log when the native backend could not start (typically: `npm ci` could not
 * download libtensorflow for tfjs-node, an optional dependency): why, and what it costs.
 */
export function fallbackNotice({ backend, skipped }: BackendChoice): string | undefined {
  const native = skipped.find((skip) => skip.backend === 'tensorflow');
  if (!native) return undefined;
  return (
    `@tensorflow/tfjs-node is not available (${native.reason}), so the model runs on the ${backend} backend: ` +
    `forward passes in ${backend === 'wasm' ? 'WebAssembly' : 'plain JavaScript'} instead of native TensorFlow, ` +
    'slower the larger the model and the batch. The production image installs tfjs-node; elsewhere, ' +
    '`npm install @tensorflow/tfjs-node` where its install can download libtensorflow'
  );
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
